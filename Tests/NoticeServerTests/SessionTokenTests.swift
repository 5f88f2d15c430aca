import Foundation
import NoticeCore
import STOMP
import Testing

@testable import NoticeServer

/// A session's token running out (docs/inbox.md): `token-expiring` on the events
/// destination, and `SEND /app/session/token` to go on under a fresh token without
/// reconnecting — against a real introspection endpoint.
@Suite struct SessionTokenTests {
    func start(_ auth: AuthorizationServer) async throws -> TestServer {
        var configuration = TestServer.configuration()
        configuration.devTokens = nil
        configuration.introspection = auth.introspection()
        return try await TestServer.start(configuration)
    }

    func refresh(_ client: StompTestClient, token: String?, receipt: String) {
        var headers: StompHeaders = ["destination": "/app/session/token", "receipt": receipt]
        if let token { headers.add("Authorization", "Bearer \(token)") }
        client.send(StompFrame(.send, headers: headers))
    }

    @Test func aSessionIsWarnedThenGoesOnUnderAFreshToken() async throws {
        let auth = try await AuthorizationServer.start()
        // Inside the warning's minute from the start, and far enough ahead that a loaded
        // machine (a fresh-clone run: 5 s was not) still connects and refreshes before it.
        let expiresAt = Int64(Date().timeIntervalSince1970) + 15
        auth.issue("short", to: "1", expiresAt: expiresAt)
        auth.issue("fresh", to: "1", expiresIn: 3600)
        let server = try await start(auth)
        let client = try await server.client()
        #expect(await client.connect(token: "short")?.command == .connected)
        #expect(await client.subscribe("/user/notice/events", id: "ev")?.command == .receipt)
        let events = InboxEventsTests()
        #expect(await events.nextEvent(client)["type"] as? String == "counts")
        let warning = await events.nextEvent(client)
        #expect(warning["type"] as? String == "token-expiring", "\(warning)")
        #expect(warning["expiresAt"] as? String == NoticeTimestamp.rfc3339(millis: expiresAt * 1000))

        refresh(client, token: "fresh", receipt: "refreshed")
        #expect(await client.frames.next()?.headers["receipt-id"] == "refreshed")
        // Past the first token's expiry the session is still open: it answers.
        while Date().timeIntervalSince1970 < Double(expiresAt) + 1.5 { try await Task.sleep(for: .milliseconds(100)) }
        client.send(StompFrame(.send, headers: ["destination": "/app/ping", "receipt": "alive"]))
        let alive = await client.frames.next()
        #expect(alive?.command == .receipt && alive?.headers["receipt-id"] == "alive", "\(String(describing: alive))")
        client.close()
        // Each refresh asks the authorization server: a second one within 10 s ends the session.
        let eager = try await server.client()
        #expect(await eager.connect(token: "fresh")?.command == .connected)
        refresh(eager, token: "fresh", receipt: "first")
        #expect(await eager.frames.next()?.headers["receipt-id"] == "first")
        refresh(eager, token: "fresh", receipt: "again")
        let refused = try #require(await eager.frames.next())
        #expect(refused.command == .error && refused.headers["message"] == "too many token refreshes", "\(refused)")
        #expect(await eager.waitUntilClosed())
        try await server.stop()
        try await auth.stop()
    }

    @Test func aBadOrAnotherUsersTokenEndsTheSession() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("alice", to: "1")
        auth.issue("bob", to: "2")
        let server = try await start(auth)
        for (token, message) in [("bob", "unauthorized"), ("not-a-token", "unauthorized"), (nil, "invalid header")] {
            let client = try await server.client()
            #expect(await client.connect(token: "alice")?.command == .connected)
            refresh(client, token: token, receipt: "r")
            let error = try #require(await client.frames.next())
            #expect(error.command == .error && error.headers["message"] == message, "\(String(describing: token)): \(error)")
            #expect(await client.waitUntilClosed())
        }
        try await server.stop()
        try await auth.stop()
    }
}

/// The admin API: a user's sessions ended on every node (two real nodes, one deliver exchange).
@Suite struct AdminSessionsTests {
    @Test func anAdminEndsAUsersSessionsOnEveryNode() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("alice", to: "1")
        auth.issue("bob", to: "2")
        auth.issue("admin", to: "ops", scopes: "read notice:admin")
        var (first, second) = try await TestServer.clusterConfigurations()
        for index in 0..<2 {
            var node = index == 0 ? first : second
            node.devTokens = nil
            node.introspection = auth.introspection()
            if index == 0 { first = node } else { second = node }
        }
        let nodeA = try await TestServer.start(first)
        let nodeB = try await TestServer.start(second)
        let aliceA = try await nodeA.subscribedClient(token: "alice", user: "1")
        let aliceB = try await nodeB.subscribedClient(token: "alice", user: "1")
        let bobA = try await nodeA.subscribedClient(token: "bob", user: "2")
        let api = NoticeAPITests()

        #expect(try await api.call(nodeB, "DELETE", "/api/admin/users/1/sessions", token: "alice").status == 403)
        #expect(try await api.call(nodeB, "DELETE", "/api/admin/users/\(String(repeating: "x", count: 200))/sessions", token: "admin").status == 400)
        #expect(try await api.call(nodeB, "DELETE", "/api/admin/users/1/sessions").status == 401)
        let ended = try await api.call(nodeB, "DELETE", "/api/admin/users/1/sessions", token: "admin")
        #expect(ended.status == 202 && ended.json["closedHere"] as? Int == 1)
        for client in [aliceB, aliceA] {
            let error = try #require(await client.frames.next())
            #expect(error.command == .error && error.headers["message"] == "disconnected", "\(error)")
            #expect(await client.waitUntilClosed())
        }
        // Bob's session on the same node is untouched.
        bobA.send(StompFrame(.send, headers: ["destination": "/app/ping", "receipt": "alive"]))
        #expect(await bobA.frames.next()?.headers["receipt-id"] == "alive")
        bobA.close()
        try await nodeB.stop()
        try await nodeA.stop()
        try await auth.stop()
    }
}
