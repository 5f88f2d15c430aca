import Foundation
import NoticeCore
import STOMP
import Testing

@testable import NoticeServer

/// The events destination (`/user/notice/events`, docs/inbox.md): counts on SUBSCRIBE, a
/// user's state changes to every session of theirs on every node, and nothing new on the
/// legacy remind destination — two real nodes sharing each kind of store and one deliver
/// exchange.
@Suite struct InboxEventsTests {
    let api = NoticeAPITests()

    /// The next MESSAGE's JSON body, skipping RECEIPTs; `[:]` when none comes in time.
    func nextEvent(_ client: StompTestClient) async -> [String: Any] {
        while let frame = await client.frames.next() {
            guard frame.command == .message else {
                if frame.command == .receipt { continue }
                Issue.record("unexpected \(frame.command)")
                return [:]
            }
            return (try? JSONSerialization.jsonObject(with: Data(frame.body))) as? [String: Any] ?? [:]
        }
        Issue.record("no event came")
        return [:]
    }

    func eventsClient(_ server: TestServer, token: String) async throws -> StompTestClient {
        let client = try await server.client()
        #expect(await client.connect(token: token)?.command == .connected)
        #expect(await client.subscribe("/user/notice/events", id: "ev")?.command == .receipt)
        return client
    }

    @Test(arguments: TestServer.Store.allCases)
    func aChangeInOneTabReachesTheUsersOtherTabsOnEveryNode(_ store: TestServer.Store) async throws {
        let (first, second) = try await TestServer.clusterConfigurations(store: store)
        let nodeA = try await TestServer.start(first)
        let nodeB = try await TestServer.start(second)
        let broker = await TestBroker()
        let records = (1...3).map { #"{"id":\#($0),"userId":"1","title":"n\#($0)"}"# } + [#"{"id":4,"userId":"2","title":"bob's"}"#]
        try await broker.publishAll(records, to: nodeA.configuration.queue, window: 10)
        try await nodeA.waitForStored(4)

        let tab1 = try await eventsClient(nodeA, token: "alice")
        let tab2 = try await eventsClient(nodeB, token: "alice")
        let bobTab = try await eventsClient(nodeB, token: "bob")
        for tab in [tab1, tab2] {
            let counts = await nextEvent(tab)
            #expect(counts["type"] as? String == "counts" && counts["unread"] as? Int == 3 && counts["unseen"] as? Int == 3)
        }
        #expect(await nextEvent(bobTab)["unread"] as? Int == 1)
        // A legacy tab: the remind destination only.
        let legacy = try await nodeB.subscribedClient(token: "alice", user: "1", extra: ["x-replay": "none"])

        // Tab 1 reads two over STOMP: both tabs hear it, then get the new counts.
        tab1.send(
            StompFrame(
                .send,
                headers: ["destination": "/app/notices/state", "receipt": "r"],
                body: Array(#"{"action":"read","ids":["1","2"]}"#.utf8)
            )
        )
        for tab in [tab1, tab2] {
            let event = await nextEvent(tab)
            #expect(event["type"] as? String == "read" && event["ids"] as? [String] == ["1", "2"], "\(event)")
            let counts = await nextEvent(tab)
            #expect(counts["type"] as? String == "counts" && counts["unread"] as? Int == 1 && counts["unseen"] as? Int == 1, "\(counts)")
        }
        // Over HTTP on the other node: the same.
        #expect(try await api.call(nodeB, "POST", "/api/notices/3/archive", token: "alice").status == 204)
        for tab in [tab1, tab2] {
            let event = await nextEvent(tab)
            #expect(event["type"] as? String == "archived" && event["ids"] as? [String] == ["3"], "\(event)")
            #expect(await nextEvent(tab)["unread"] as? Int == 0)
        }
        // A change that changes nothing says nothing: the next event is the next real change.
        #expect(try await api.call(nodeA, "POST", "/api/notices/1/read", token: "alice").status == 204)
        let all = try await api.call(nodeA, "POST", "/api/notices/state", token: "alice", body: #"{"action":"unread","all":true}"#)
        #expect(all.json["changed"] as? Int == 2)
        for tab in [tab1, tab2] {
            let event = await nextEvent(tab)
            #expect(event["type"] as? String == "unread" && event["all"] as? Bool == true, "\(event)")
            #expect(await nextEvent(tab)["unread"] as? Int == 2)
        }
        // Bob heard none of it; a new notice of his moves his counts.
        try await broker.publish(#"{"id":5,"userId":"2","title":"bob's second"}"#, to: nodeA.configuration.queue)
        let bobs = await nextEvent(bobTab)
        #expect(bobs["type"] as? String == "counts" && bobs["unread"] as? Int == 2, "\(bobs)")
        // Nothing new on the legacy destination: its next frame is alice's next notice.
        try await broker.publish(#"{"id":6,"userId":"1","title":"marker"}"#, to: nodeA.configuration.queue)
        #expect(await legacy.noticeIds(throughNotice: "6") == ["6"])
        for tab in [tab1, tab2] { #expect(await nextEvent(tab)["unread"] as? Int == 3) }
        // A recall on node B reaches alice's tabs on both nodes.
        #expect(try await api.call(nodeB, "DELETE", "/api/notices/6", token: "carol").status == 204)
        for tab in [tab1, tab2] {
            let recalled = await nextEvent(tab)
            #expect(recalled["type"] as? String == "recalled" && recalled["ids"] as? [String] == ["6"], "\(recalled)")
            #expect(await nextEvent(tab)["unread"] as? Int == 2)
        }

        for client in [tab1, tab2, bobTab, legacy] { client.close() }
        await broker.close()
        try await nodeB.stop()
        try await nodeA.stop()
    }
}
