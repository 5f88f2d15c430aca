import Foundation
import NoticeCore
import RabbitMQ
import STOMP
import Testing

@testable import NoticeServer

/// The inbox (SPEC §7): counts, state verbs over HTTP and STOMP, list filters — against the
/// real service, broker and each store.
@Suite struct InboxAPITests {
    let api = NoticeAPITests()

    func counts(_ server: TestServer, _ query: String = "", token: String = "alice") async throws -> [String: Any] {
        let answer = try await api.call(server, "GET", "/api/notices/count\(query)", token: token)
        #expect(answer.status == 200, "\(query)")
        #expect(answer.headers["cache-control"] == "no-store")
        return answer.json
    }

    func change(_ server: TestServer, _ body: String, token: String = "alice") async throws -> NoticeAPITests.Answer {
        try await api.call(server, "POST", "/api/notices/state", token: token, body: body)
    }

    /// Publishes alice's (user 1) notices 1–4 (1, 2: hr; 3: it) and 5 to alice and bob.
    func start(_ store: TestServer.Store) async throws -> TestServer {
        let server = try await TestServer.start(try await TestServer.configuration(store: store))
        let broker = await TestBroker()
        let records =
            [#"{"id":1,"userId":"1","category":"hr"}"#, #"{"id":2,"userId":"1","category":"hr"}"#]
            + [#"{"id":3,"userId":"1","category":"it"}"#, #"{"id":4,"userId":1}"#, #"{"id":5,"userIds":["1","2"],"title":"both"}"#]
        try await broker.publishAll(records, to: server.configuration.queue, window: 10)
        try await server.waitForStored(6)
        await broker.close()
        return server
    }

    @Test(arguments: TestServer.Store.allCases)
    func countsAndEveryVerbOverHTTP(_ store: TestServer.Store) async throws {
        let server = try await start(store)
        let initial = try await counts(server)
        #expect(initial["unread"] as? Int == 5 && initial["unseen"] as? Int == 5 && initial["cap"] as? Int == 99)
        #expect(initial["unreadCapped"] as? Bool == false && initial["unseenCapped"] as? Bool == false)
        let hr = try await counts(server, "?category=hr")
        #expect(hr["unread"] as? Int == 2 && hr["category"] as? String == "hr")
        let capped = try await counts(server, "?cap=2")
        #expect(capped["unread"] as? Int == 2 && capped["unreadCapped"] as? Bool == true && capped["cap"] as? Int == 2)

        #expect(try await api.call(server, "POST", "/api/notices/1/seen", token: "alice").status == 204)
        #expect(try await counts(server)["unseen"] as? Int == 4)
        let upTo = try await change(server, #"{"action":"read","upTo":"3","category":"hr"}"#)
        #expect(upTo.status == 200 && upTo.json["changed"] as? Int == 2)
        #expect(try await counts(server, "?category=hr")["unread"] as? Int == 0)
        #expect(try await api.call(server, "POST", "/api/notices/2/unread", token: "alice").status == 204)
        #expect(try await counts(server, "?category=hr")["unread"] as? Int == 1)

        let archived = try await change(server, #"{"action":"archive","ids":["1","2","90"]}"#)
        #expect(archived.json["changed"] as? Int == 2)
        #expect(api.ids(try await api.call(server, "GET", "/api/notices", token: "alice")) == ["5", "4", "3"])
        let archive = try await api.call(server, "GET", "/api/notices?archived=true", token: "alice")
        #expect(api.ids(archive) == ["2", "1"])
        let item = try #require((archive.json["notices"] as? [[String: Any]])?.first)
        #expect(item["category"] as? String == "hr")
        #expect((item["archivedAt"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
        // Read (so seen), then unread: still seen.
        #expect(item["seenAt"] is String && item["readAt"] is NSNull)
        #expect(api.ids(try await api.call(server, "GET", "/api/notices?category=it", token: "alice")) == ["3"])
        #expect(try await api.call(server, "POST", "/api/notices/1/unarchive", token: "alice").status == 204)
        #expect(api.ids(try await api.call(server, "GET", "/api/notices", token: "alice")) == ["5", "4", "3", "1"])

        // Deleting is alice's row only: bob keeps notice 5.
        #expect(try await api.call(server, "POST", "/api/notices/5/delete", token: "alice").status == 204)
        #expect(try await api.call(server, "POST", "/api/notices/5/delete", token: "alice").status == 404)
        #expect(api.ids(try await api.call(server, "GET", "/api/notices", token: "bob")) == ["5"])
        #expect(try await counts(server, token: "bob")["unread"] as? Int == 1)
        let all = try await change(server, #"{"action":"read","all":true}"#)
        #expect(all.json["changed"] as? Int == 3)
        #expect(try await counts(server)["unread"] as? Int == 0)
        #expect(try await counts(server, token: "bob")["unread"] as? Int == 1)
        try await server.stop()
    }

    @Test func badRequestsSayWhyAndChangeNothing() async throws {
        let server = try await start(.sqlite)
        for bad in ["?cap=0", "?cap=10000", "?cap=x", "?category=", "?category=\(String(repeating: "c", count: 65))"] {
            let answer = try await api.call(server, "GET", "/api/notices/count\(bad)", token: "alice")
            #expect(answer.status == 400, "\(bad)")
            #expect(answer.json["error"] as? String == "invalid_request")
        }
        for bad in ["archived=maybe", "category="] {
            #expect(try await api.call(server, "GET", "/api/notices?\(bad)", token: "alice").status == 400, "\(bad)")
        }
        let reasons = [
            ("not json", "not JSON"),
            (#"{"action":"shred","all":true}"#, "action must be one of"),
            (#"{"action":"read","upTo":"90"}"#, "upTo: no such notice"),
            (#"{"action":"read","ids":[]}"#, "1 to 200"),
        ]
        for (body, reason) in reasons {
            let answer = try await change(server, body)
            #expect(answer.status == 400, "\(body)")
            #expect((answer.json["message"] as? String)?.contains(reason) == true, "\(body): \(answer.json)")
        }
        #expect(try await change(server, #"{"action":"read","all":true,"pad":"\#(String(repeating: "x", count: 20_000))"}"#).status == 413)
        let unknown = try await api.call(server, "POST", "/api/notices/1/shred", token: "alice")
        #expect(unknown.status == 404 && (unknown.json["message"] as? String)?.contains("archive") == true)
        for path in ["/api/notices/count"] {
            #expect(try await api.call(server, "GET", path).status == 401)
        }
        for path in ["/api/notices/state", "/api/notices/1/archive"] {
            #expect(try await api.call(server, "POST", path, body: #"{"action":"read","all":true}"#).status == 401)
        }
        #expect(try await counts(server)["unread"] as? Int == 5)
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func stateOverStompIsStoredBeforeItsReceipt(_ store: TestServer.Store) async throws {
        let server = try await start(store)
        let alice = try await server.subscribedClient(token: "alice", user: "1", extra: ["x-replay": "none"])
        alice.send(
            StompFrame(.send, headers: ["destination": "/app/notices/state", "receipt": "r1"], body: Array(#"{"action":"archive","upTo":"2"}"#.utf8))
        )
        #expect(await alice.frames.next()?.headers["receipt-id"] == "r1")
        #expect(api.ids(try await api.call(server, "GET", "/api/notices", token: "alice")) == ["5", "4", "3"])
        alice.send(
            StompFrame(.send, headers: ["destination": "/app/notices/state", "receipt": "r2"], body: Array(#"{"action":"seen","all":true}"#.utf8))
        )
        #expect(await alice.frames.next()?.headers["receipt-id"] == "r2")
        let after = try await counts(server)
        #expect(after["unseen"] as? Int == 0 && after["unread"] as? Int == 3)
        // A malformed command is an ERROR that says why, then the connection closes.
        alice.send(StompFrame(.send, headers: ["destination": "/app/notices/state"], body: Array(#"{"action":"read"}"#.utf8)))
        let error = try #require(await alice.frames.next())
        #expect(error.command == .error)
        #expect(String(decoding: error.body, as: UTF8.self).contains("exactly one of"))
        #expect(await alice.waitUntilClosed())
        // So is an upTo that names no notice of the user (bob's notice here), naming its receipt.
        let bob = try await server.subscribedClient(token: "bob", user: "2", extra: ["x-replay": "none"])
        bob.send(
            StompFrame(.send, headers: ["destination": "/app/notices/state", "receipt": "r3"], body: Array(#"{"action":"read","upTo":"2"}"#.utf8))
        )
        let refused = try #require(await bob.frames.next())
        #expect(refused.command == .error && refused.headers["message"] == "invalid body" && refused.headers["receipt-id"] == "r3")
        #expect(String(decoding: refused.body, as: UTF8.self).contains("no such notice"))
        #expect(await bob.waitUntilClosed())
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func receiptsThenARecallThatReachesEveryRecipient(_ store: TestServer.Store) async throws {
        let server = try await start(store)
        let events = InboxEventsTests()
        let alice = try await events.eventsClient(server, token: "alice")
        let bob = try await events.eventsClient(server, token: "bob")
        #expect(await events.nextEvent(alice)["unread"] as? Int == 5)
        #expect(await events.nextEvent(bob)["unread"] as? Int == 1)
        #expect(try await api.call(server, "POST", "/api/notices/5/read", token: "alice").status == 204)
        _ = await events.nextEvent(alice)  // read
        _ = await events.nextEvent(alice)  // counts

        // Dev tokens carry the publish scope.
        let receipts = try await api.call(server, "GET", "/api/notices/5/receipts", token: "carol")
        #expect(receipts.status == 200)
        #expect(receipts.json["recipients"] as? Int == 2 && receipts.json["read"] as? Int == 1 && receipts.json["seen"] as? Int == 1)
        let users = try #require(receipts.json["users"] as? [[String: Any]])
        #expect(users.map { $0["userId"] as? String } == ["1", "2"])
        #expect(users.first?["readAt"] is String && users.last?["readAt"] is NSNull)
        #expect(receipts.json["next"] is NSNull)
        let paged = try await api.call(server, "GET", "/api/notices/5/receipts?limit=1", token: "carol")
        #expect((paged.json["users"] as? [[String: Any]])?.count == 1 && paged.json["next"] as? String == "1")
        let after = try await api.call(server, "GET", "/api/notices/5/receipts?limit=1&after=1", token: "carol")
        #expect((after.json["users"] as? [[String: Any]])?.first?["userId"] as? String == "2")
        for bad in ["limit=0", "limit=1001", "after=", "after=a%2Fb"] {
            #expect(try await api.call(server, "GET", "/api/notices/5/receipts?\(bad)", token: "carol").status == 400, "\(bad)")
        }

        #expect(try await api.call(server, "DELETE", "/api/notices/5", token: "carol").status == 204)
        for tab in [alice, bob] {
            let recalled = await events.nextEvent(tab)
            #expect(recalled["type"] as? String == "recalled" && recalled["ids"] as? [String] == ["5"], "\(recalled)")
            _ = await events.nextEvent(tab)  // counts
        }
        #expect(api.ids(try await api.call(server, "GET", "/api/notices", token: "bob")).isEmpty)
        #expect(try await counts(server, token: "bob")["unread"] as? Int == 0)
        #expect(try await api.call(server, "DELETE", "/api/notices/5", token: "carol").status == 404)
        #expect(try await api.call(server, "GET", "/api/notices/5/receipts", token: "carol").status == 404)
        for client in [alice, bob] { client.close() }
        try await server.stop()
    }

    @Test func recallAndReceiptsNeedThePublishScope() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("reader", to: "1", scopes: "read")
        auth.issue("publisher", to: "svc", scopes: "read notice:publish")
        var configuration = TestServer.configuration()
        configuration.devTokens = nil
        configuration.introspection = auth.introspection()
        let server = try await TestServer.start(configuration)
        let broker = await TestBroker()
        try await broker.publish(#"{"id":7,"userId":"1","title":"t"}"#, to: server.configuration.queue)
        try await server.waitForStored(1)
        for (method, path) in [("DELETE", "/api/notices/7"), ("GET", "/api/notices/7/receipts")] {
            let refused = try await api.call(server, method, path, token: "reader")
            #expect(refused.status == 403 && refused.json["error"] as? String == "insufficient_scope", "\(method) \(path)")
        }
        #expect(try await api.call(server, "GET", "/api/notices/7/receipts", token: "publisher").status == 200)
        #expect(try await api.call(server, "DELETE", "/api/notices/7", token: "publisher").status == 204)
        await broker.close()
        try await server.stop()
        try await auth.stop()
    }

    @Test func everyChangeIsPublishedToTheEventsExchange() async throws {
        let server = try await start(.sqlite)
        let events = await TestBroker(consume: TestServer.freshQueueName(), topic: (server.configuration.eventsExchange, "#"))
        #expect(try await change(server, #"{"action":"read","upTo":"2","category":"hr"}"#).json["changed"] as? Int == 2)
        // A command that changes nothing publishes nothing: the next message is the recall.
        #expect(try await change(server, #"{"action":"read","ids":["1"]}"#).json["changed"] as? Int == 0)
        #expect(try await api.call(server, "DELETE", "/api/notices/5", token: "carol").status == 204)
        let messages = await events.take(2)
        #expect(messages.map(\.routingKey) == ["read", "recalled"])
        let read = try JSONSerialization.jsonObject(with: Data(messages.first?.message.body ?? [])) as? [String: Any]
        #expect(read?["type"] as? String == "read" && read?["userId"] as? String == "1" && read?["upTo"] as? String == "2")
        #expect(read?["category"] as? String == "hr" && read?["at"] is String)
        let recalled = try JSONSerialization.jsonObject(with: Data(messages.last?.message.body ?? [])) as? [String: Any]
        #expect(recalled?["ids"] as? [String] == ["5"] && recalled?["recipients"] as? Int == 2 && recalled?["userId"] == nil)
        await events.close()
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func expiryAndCollapseKeysThroughTheQueue(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.configuration(store: store))
        let broker = await TestBroker()
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let past = NoticeTimestamp.rfc3339(millis: now - 60_000)
        try await broker.publish(#"{"id":10,"userId":"1","title":"too late","expiresAt":"\#(past)"}"#, to: server.configuration.queue)
        try await broker.publish(
            #"{"id":11,"userId":"1","title":"build 1 failed","collapseKey":"build","expiresAt":\#(now + 3_600_000)}"#,
            to: server.configuration.queue
        )
        #expect(await alice.noticeIds(throughNotice: "11") == ["11"], "expired on arrival: stored, not pushed")
        try await broker.publish(#"{"id":12,"userId":"1","title":"build 2 failed","collapseKey":"build"}"#, to: server.configuration.queue)
        try await broker.publish(#"{"id":13,"userId":1,"title":"marker"}"#, to: server.configuration.queue)
        #expect(await alice.noticeIds(throughNotice: "13") == ["12", "13"])
        // Build 2 replaced the unread build 1; the expired one is in no list and no count.
        #expect(api.ids(try await api.call(server, "GET", "/api/notices", token: "alice")) == ["13", "12"])
        #expect(try await counts(server)["unread"] as? Int == 2)
        let receipts = try await api.call(server, "GET", "/api/notices/10/receipts", token: "carol")
        #expect(receipts.status == 200 && receipts.json["recipients"] as? Int == 1, "its row is kept")
        #expect(try await api.call(server, "GET", "/api/notices/11/receipts", token: "carol").json["recipients"] as? Int == 0)
        alice.close()
        await broker.close()
        try await server.stop()
    }
}
