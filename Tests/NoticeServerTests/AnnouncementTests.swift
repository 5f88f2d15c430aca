import Foundation
import NoticeCore
import STOMP
import Testing

@testable import NoticeServer

/// Announcements end to end (docs/inbox.md): a broadcast in every user's list and counts,
/// each user's own read state, replay to a user who was offline (and only once), and a recall
/// that reaches every user's sessions — two real nodes sharing each kind of store.
@Suite struct AnnouncementTests {
    let api = NoticeAPITests()
    let events = InboxEventsTests()

    func ids(_ answer: NoticeAPITests.Answer) -> [String] { api.ids(answer) }

    @Test(arguments: TestServer.Store.allCases)
    func anAnnouncementIsInEveryInboxReplayedOnceAndRecalledEverywhere(_ store: TestServer.Store) async throws {
        let (first, second) = try await TestServer.clusterConfigurations(store: store)
        let nodeA = try await TestServer.start(first)
        let nodeB = try await TestServer.start(second)
        let broker = await TestBroker()
        let queue = nodeA.configuration.queue
        try await broker.publishAll(
            [#"{"id":1,"userId":"1","title":"alice's"}"#, #"{"id":10,"broadcast":true,"title":"all hands","category":"news"}"#],
            to: queue,
            window: 10
        )
        try await nodeA.waitForStored(2)

        // Counted and listed for everyone, in its place.
        let alice = try await events.eventsClient(nodeA, token: "alice")
        let bob = try await events.eventsClient(nodeB, token: "bob")
        let aliceCounts = await events.nextEvent(alice)
        #expect(aliceCounts["unread"] as? Int == 2 && aliceCounts["unseen"] as? Int == 2, "\(aliceCounts)")
        #expect(await events.nextEvent(bob)["unread"] as? Int == 1)
        let bobsList = try await api.call(nodeB, "GET", "/api/notices", token: "bob")
        #expect(ids(bobsList) == ["10"])
        let item = try #require((bobsList.json["notices"] as? [[String: Any]])?.first)
        #expect(
            (item["notice"] as? [String: Any])?["broadcast"] as? Bool == true && item["readAt"] is NSNull && item["category"] as? String == "news"
        )
        #expect(ids(try await api.call(nodeA, "GET", "/api/notices", token: "alice")) == ["10", "1"])

        // Bob reads it on node B: his state, his sessions; Alice's stays unread.
        #expect(try await api.call(nodeB, "POST", "/api/notices/10/read", token: "bob").status == 204)
        let read = await events.nextEvent(bob)
        #expect(read["type"] as? String == "read" && read["ids"] as? [String] == ["10"], "\(read)")
        #expect(await events.nextEvent(bob)["unread"] as? Int == 0)
        #expect(try await api.call(nodeA, "GET", "/api/notices/count", token: "alice").json["unread"] as? Int == 2)
        #expect(ids(try await api.call(nodeB, "GET", "/api/notices?unread=true", token: "bob")) == [])

        // A new announcement moves everyone's counts, on both nodes.
        try await broker.publish(#"{"id":11,"broadcast":true,"title":"fire drill"}"#, to: queue)
        #expect(await events.nextEvent(alice)["unread"] as? Int == 3)
        #expect(await events.nextEvent(bob)["unread"] as? Int == 1)

        // Carol was offline: her first SUBSCRIBE replays both, her next one neither.
        let carol = try await nodeB.subscribedClient(token: "carol", user: "3")
        #expect(await carol.noticeIds(throughNotice: "11") == ["10", "11"])
        carol.close()
        try await ReplayTests().waitForUndelivered(nodeB, user: "3", [])
        let carolAgain = try await nodeA.subscribedClient(token: "carol", user: "3")
        try await broker.publish(#"{"id":12,"userId":"3","title":"marker"}"#, to: queue)
        #expect(await carolAgain.noticeIds(throughNotice: "12") == ["12"])
        carolAgain.close()

        // A recall takes it from every inbox and tells every user's sessions, on both nodes.
        #expect(try await api.call(nodeB, "DELETE", "/api/notices/11", token: "carol").status == 204)
        for (tab, unread) in [(alice, 2), (bob, 0)] {
            let recalled = await events.nextEvent(tab)
            #expect(recalled["type"] as? String == "recalled" && recalled["ids"] as? [String] == ["11"], "\(recalled)")
            #expect(await events.nextEvent(tab)["unread"] as? Int == unread)
        }
        #expect(ids(try await api.call(nodeA, "GET", "/api/notices", token: "alice")) == ["10", "1"])

        // Receipts: the users with a state of it; delivered, the users whose mark reached it.
        let receipts = try await api.call(nodeA, "GET", "/api/notices/10/receipts", token: "carol")
        #expect(receipts.json["broadcast"] as? Bool == true && receipts.json["recipients"] as? Int == 1, "\(receipts.json)")
        #expect(receipts.json["read"] as? Int == 1 && receipts.json["delivered"] as? Int == 1)
        #expect((receipts.json["users"] as? [[String: Any]])?.map { $0["userId"] as? String } == ["2"])

        // Alice deletes it over STOMP: gone from her inbox only.
        alice.send(
            StompFrame(.send, headers: ["destination": "/app/notices/state", "receipt": "d"], body: Array(#"{"action":"delete","ids":["10"]}"#.utf8))
        )
        let deleted = await events.nextEvent(alice)
        #expect(deleted["type"] as? String == "deleted" && deleted["ids"] as? [String] == ["10"], "\(deleted)")
        #expect(await events.nextEvent(alice)["unread"] as? Int == 1)
        #expect(ids(try await api.call(nodeB, "GET", "/api/notices", token: "alice")) == ["1"])
        #expect(ids(try await api.call(nodeB, "GET", "/api/notices", token: "bob")) == ["10"])

        // A recall of her own notice on node B reaches her tab on node A the same way.
        #expect(try await api.call(nodeB, "DELETE", "/api/notices/1", token: "carol").status == 204)
        let ownRecalled = await events.nextEvent(alice)
        #expect(ownRecalled["type"] as? String == "recalled" && ownRecalled["ids"] as? [String] == ["1"], "\(ownRecalled)")
        #expect(await events.nextEvent(alice)["unread"] as? Int == 0)
        #expect(ids(try await api.call(nodeA, "GET", "/api/notices", token: "alice")) == [])

        for client in [alice, bob] { client.close() }
        await broker.close()
        try await nodeA.stop()
        try await nodeB.stop()
    }
}
