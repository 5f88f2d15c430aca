import Foundation
import Logging
import STOMP
import Testing
import TokenIntrospection

@testable import NoticeServer

/// SPEC §5 against a real HTTP authorization server started by the test.
@Suite(.serialized) struct IntrospectionTests {
    func start(
        _ auth: AuthorizationServer,
        style: String = "rfc7662",
        logHandler: CapturingLogHandler? = nil,
        limit: (inout IntrospectionConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        var configuration = TestServer.configuration()
        configuration.devTokens = nil
        configuration.introspection = auth.introspection(style: try #require(IntrospectionConfiguration.Style(rawValue: style)))
        limit(&configuration.introspection!)
        configuration.maxSessionsPerUser = 2000
        if logHandler != nil { configuration.logLevel = .trace }
        return try await TestServer.start(configuration, logHandler: logHandler)
    }

    func connect(_ server: TestServer, token: String?) async throws -> StompFrame? {
        let client = try await server.client()
        defer { client.close() }
        return await client.connect(token: token)
    }

    /// `times` CONNECTs with one token at once, each on its own connection; their answers.
    func connectConcurrently(_ server: TestServer, token: String, times: Int) async throws -> [StompCommand?] {
        try await withThrowingTaskGroup(of: StompCommand?.self) { group in
            for _ in 0..<times { group.addTask { try await connect(server, token: token)?.command } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test(arguments: ["rfc7662", "spring"])
    func validTokensConnectAsTheirUserAndOthersAreRefused(style: String) async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("good", to: "42")
        auth.issue("old", to: "43", expiresIn: -10)
        let server = try await start(auth, style: style)
        let connected = try #require(try await connect(server, token: "good"))
        #expect(connected.command == .connected)
        #expect(connected.headers["user-name"] == "42")
        for token in ["old", "unknown", "", "a b", "%00"] {
            let refused = try #require(try await connect(server, token: token))
            #expect(refused.command == .error)
            #expect(refused.headers["message"] == "unauthorized")
        }
        try await server.stop()
        try await auth.stop()
    }

    /// The sessions of a node that died reconnect here at once, each with a token this node has
    /// not seen: over the introspection rate they wait their turn instead of being refused.
    @Test func aReconnectStormOverTheIntrospectionRateIsLetIn() async throws {
        let auth = try await AuthorizationServer.start()
        let sessions = 60
        for index in 0..<sessions { auth.issue("storm-\(index)", to: "\(1000 + index)") }
        let server = try await start(auth) {
            $0.maxRequestsPerSecond = 20
            $0.maxRateWait = .seconds(5)
        }
        let commands = try await withThrowingTaskGroup(of: StompCommand?.self) { group in
            for index in 0..<sessions { group.addTask { try await connect(server, token: "storm-\(index)")?.command } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // A burst of 20, then 20 a second: all 60 within 2 s, none refused.
        #expect(commands.filter { $0 == .connected }.count == sessions)
        #expect(auth.requests == sessions)
        try await server.stop()
        try await auth.stop()
    }

    @Test func aThousandConnectsWithOneTokenCostOneRequest() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("shared", to: "7")
        let server = try await start(auth)
        for batch in 0..<50 {
            for command in try await connectConcurrently(server, token: "shared", times: 20) {
                #expect(command == .connected, "batch \(batch)")
            }
        }
        #expect(auth.requests == 1)
        let metrics = try await server.get("/metrics").body
        #expect(metrics.contains(#"notice_introspection_requests_total{outcome="active"} 1"#))
        #expect(metrics.contains("notice_introspection_cache_hits_total 999"))
        #expect(metrics.contains("notice_introspection_duration_seconds_count 1"))
        try await server.stop()
        try await auth.stop()
    }

    @Test func aHundredConcurrentConnectsWithANewTokenCostOneRequest() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("fresh", to: "8")
        auth.setDelay(.milliseconds(300))
        let server = try await start(auth)
        for command in try await connectConcurrently(server, token: "fresh", times: 100) {
            #expect(command == .connected)
        }
        #expect(auth.requests == 1)
        try await server.stop()
        try await auth.stop()
    }

    @Test func aSlowOrFailingEndpointDenies() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("slow", to: "9")
        auth.issue("broken", to: "9")
        let server = try await start(auth)
        // The service gives up after its 3 s timeout; the endpoint would answer after 20 s.
        // Denied no sooner than the timeout (the request starts after `started`: a denial for
        // another reason would come at once), and well before the answer, with room for a
        // loaded machine.
        auth.setDelay(.seconds(20))
        let started = ContinuousClock.now
        #expect(try await connect(server, token: "slow")?.headers["message"] == "unauthorized")
        let waited = ContinuousClock.now - started
        #expect(waited >= .seconds(3) && waited < .seconds(15), "\(waited)")
        auth.setDelay(.zero)
        auth.setFailing(true)
        #expect(try await connect(server, token: "broken")?.headers["message"] == "unauthorized")
        try await server.stop()
        try await auth.stop()
    }

    @Test func anExpiringTokenClosesItsSessionWithinASecond() async throws {
        let auth = try await AuthorizationServer.start()
        // `exp` set exactly (not "now + n" computed twice, across a second boundary), and far
        // enough ahead that a loaded machine still connects before it.
        let expiresAt = Int64(Date().timeIntervalSince1970) + 5
        auth.issue("short", to: "10", expiresAt: expiresAt)
        let server = try await start(auth)
        let client = try await server.client()
        #expect(await client.connect(token: "short")?.command == .connected)
        #expect(await client.subscribe("/notice/10/remind")?.command == .receipt)
        let error = try #require(await client.frames.next(timeout: .seconds(30)))
        let closedAt = Date().timeIntervalSince1970
        #expect(error.headers["message"] == "token expired")
        // Never before `exp`; after it, at the session's next tick (at most 1 s apart), with
        // 2 s more for a loaded machine.
        #expect(closedAt >= Double(expiresAt))
        #expect(closedAt - Double(expiresAt) < 3, "\(closedAt - Double(expiresAt)) s after exp")
        #expect(await client.waitUntilClosed())
        try await server.stop()
        try await auth.stop()
    }

    @Test func connectedSessionsOutliveTheEndpoint() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("steady", to: "11")
        auth.issue("another", to: "11")
        let server = try await start(auth)
        let client = try await server.subscribedClient(token: "steady", user: "11")
        try await auth.stop()
        #expect(try await connect(server, token: "another")?.headers["message"] == "unauthorized")
        let broker = await TestBroker()
        try await broker.publish(#"{"userId":"11","title":"still here"}"#, to: server.configuration.queue)
        #expect(await client.frames.next()?.command == .message)
        client.close()
        await broker.close()
        try await server.stop()
    }

    /// Clients that send CONNECT and close while their token is checked are let go at once, not
    /// when the authorization server answers: a flood of them would otherwise keep connections
    /// (and turns at the endpoint) for clients that are gone. The request goes on for the cache.
    @Test func clientsThatCloseDuringTheirTokenCheckAreReleasedAtOnce() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("held", to: "15")
        auth.issue("other", to: "16")
        auth.issue("later", to: "17")
        // Answers are held until the test lowers the delay; the service would wait 10 minutes.
        let server = try await start(auth) { $0.timeout = .seconds(600) }
        auth.setDelay(.seconds(3600))
        var clients: [StompTestClient] = []
        // Three checks of one token share its request; one more has a request of its own.
        for token in ["held", "held", "held", "other"] {
            let client = try await server.client()
            client.send(StompFrame(.connect, headers: ["accept-version": "1.2", "host": "localhost", "Authorization": "Bearer \(token)"]))
            clients.append(client)
        }
        #expect(try await HostileInputTests().eventually { auth.requests == 2 })
        #expect(try await HostileInputTests().connectionObjects(server) == 4)
        for client in clients { client.close() }
        #expect(try await HostileInputTests().eventually { try await HostileInputTests().connectionObjects(server) == 0 })
        #expect(auth.requests == 2)
        // The held requests answer now, into the cache: "held" connects without another request.
        auth.setDelay(.zero)
        #expect(try await connect(server, token: "held")?.command == .connected)
        #expect(try await connect(server, token: "later")?.command == .connected)
        #expect(auth.requests == 3)
        try await server.stop()
        try await auth.stop()
    }

    @Test func tokensNeverReachTheLogs() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("secret-token-1", to: "12")
        let capture = CapturingLogHandler()
        let server = try await start(auth, logHandler: capture)
        #expect(try await connect(server, token: "secret-token-1")?.command == .connected)
        #expect(try await connect(server, token: "secret-token-2")?.command == .error)
        try await server.stop()
        try await auth.stop()
        let leaks = capture.lines.filter { $0.contains("secret-token") || $0.contains("s3cret") }
        #expect(leaks.isEmpty, "\(leaks)")
        #expect(capture.lines.contains { $0.contains("token denied") })
    }
}
