import Foundation
import NoticeCore
import RabbitMQ
import STOMP
import StompServer
import Testing

@testable import NoticeServer

#if canImport(Glibc)
import Glibc
#endif

/// Numbers, names and connections from outside at their extremes (issue #15), end to end:
/// the real service, broker and SQLite file. Each test reproduces a defect that crashed,
/// leaked or stuck the service before its fix.
@Suite struct HostileInputTests {
    func notice(_ id: Int, user: String = "1", content: String = "") -> String {
        #"{"id":\#(id),"userId":"\#(user)","title":"n\#(id)","content":"\#(content)"}"#
    }

    /// `notice_stomp_connection_objects` from `/metrics`.
    func connectionObjects(_ server: TestServer) async throws -> Double? {
        MetricsTests.value(try await server.get("/metrics").body, "notice_stomp_connection_objects")
    }

    /// Polls `condition` until it holds or 30 s pass; whether it held.
    func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// The server's own heart-beats (EOL text messages) on a raw socket; the rest is skipped.
    func awaitHeartBeats(_ socket: RawWebSocket, count: Int) async -> Bool {
        await blocking {
            var seen = 0
            while seen < count, let frame = socket.readFrame(timeout: .seconds(30)) {
                if frame.opcode == 0x1, frame.payload == [0x0A] { seen += 1 }
            }
            return seen == count
        }
    }

    /// A client's heart-beat numbers past `Int.max / 2` once trapped on the first timer tick
    /// after CONNECTED (twice the interval overflowed): every session was gone. Now they are a
    /// day at most; the server's ticks (seen as its heart-beats, when the client asks for them
    /// often) run through them.
    @Test(arguments: ["4611686018427387904,100", "9223372036854775807,100", "99999999999999999999999,100", "4611686018427387904,4611686018427387904"])
    func hugeHeartBeatsAreBoundedAndTheServerLivesOn(_ heartBeat: String) async throws {
        var configuration = TestServer.configuration()
        configuration.session.heartBeatMillis = 100
        let server = try await TestServer.start(configuration)
        let port = server.port
        let socket = try await offThePool { try RawWebSocket(port: port, receiveBuffer: 65_536) }
        try socket.sendText("CONNECT\naccept-version:1.2\nheart-beat:\(heartBeat)\nAuthorization:Bearer alice\n\n\u{0}")
        let frame = await blocking { socket.readFrame() }
        let connected = try #require(frame)
        #expect(String(decoding: connected.payload, as: UTF8.self).hasPrefix("CONNECTED\n"))
        if heartBeat.hasSuffix(",100") {
            #expect(String(decoding: connected.payload, as: UTF8.self).contains("heart-beat:100,"))
            // Each heart-beat comes from a tick that also checked the client's (huge) interval.
            #expect(await awaitHeartBeats(socket, count: 3))
        }
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let broker = await TestBroker()
        try await broker.publish(notice(1), to: server.configuration.queue)
        #expect(await alice.frames.next()?.headers["notice-id"] == "1")
        alice.close()
        await broker.close()
        try await server.stop()
    }

    /// Tokens "valid for ever" (`exp` up to `Int64.max`, as some identity providers issue for
    /// service accounts) once trapped at CONNECT (`exp * 1000`). They are taken as 9999-12-31.
    @Test(arguments: [Int64.max, 4_611_686_018_427_387_904, 253_402_300_800, 9_223_372_036_854_775])
    func farFutureExpiriesConnectAndAreServed(_ exp: Int64) async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("forever", to: "42", expiresAt: exp)
        var configuration = TestServer.configuration()
        configuration.devTokens = nil
        configuration.introspection = auth.introspection()
        configuration.session.heartBeatMillis = 100
        let server = try await TestServer.start(configuration)
        let client = try await server.client()
        #expect(await client.connect(token: "forever", heartBeat: "0,100")?.command == .connected)
        #expect(await client.subscribe("/notice/42/remind")?.command == .receipt)
        let broker = await TestBroker()
        try await broker.publish(notice(7, user: "42"), to: server.configuration.queue)
        let pushed = await client.frames.next()
        #expect(pushed?.headers["notice-id"] == "7", "\(String(describing: pushed))")
        client.close()
        await broker.close()
        try await server.stop()
        try await auth.stop()
    }

    /// Every closed connection is freed: 7 KiB per connection stayed behind before (the
    /// driver-cancel closure held the connection and its channel).
    @Test func closedConnectionsAreFreed() async throws {
        let server = try await TestServer.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask {
                    let client = try await server.client()
                    if index % 2 == 0 {
                        // Connected and subscribed, then the client just goes.
                        _ = await client.connect(token: "alice")
                        _ = await client.subscribe("/notice/1/remind")
                    } else {
                        // Never connected: the CONNECT timeout is not what frees it.
                        client.sendRaw("garbage\n\n\u{0}")
                    }
                    client.close()
                    _ = await client.waitUntilClosed()
                }
            }
            try await group.waitForAll()
        }
        // SockJS sessions too (released after the disconnect delay).
        for transport in [SockJSStompClient.Transport.xhrStreaming, .xhrPolling] {
            let client = try await SockJSStompClient.open(port: server.port, transport: transport)
            #expect(await client.connect(token: "alice")?.command == .connected)
            client.close()
        }
        let freed = try await eventually { try await connectionObjects(server) == 0 }
        let left = try await connectionObjects(server)
        #expect(freed, "connection objects left: \(String(describing: left))")
        try await server.stop()
    }

    /// A user with a backlog larger than one SockJS queue's bound gets all of it on every
    /// transport: the replay waits for the browser to drain instead of overflowing (it got one
    /// MESSAGE and `c[1013,"Too many messages queued"]` on every reconnect before).
    @Test(arguments: [SockJSStompClient.Transport.xhrPolling, .xhrStreaming, .webSocket])
    func aSockJSBacklogIsReplayedWhole(_ transport: SockJSStompClient.Transport) async throws {
        var configuration = TestServer.configuration()
        configuration.maxOutboundBytes = 262_144  // the SockJS queue bound: 4 notices
        let server = try await TestServer.start(configuration)
        let broker = await TestBroker()
        let content = String(repeating: "x", count: 60_000)
        try await broker.publishAll((1...20).map { notice($0, content: content) }, to: server.configuration.queue, window: 20)
        try await server.waitForStored(20)
        let client = try await SockJSStompClient.open(port: server.port, transport: transport)
        #expect(await client.connect(token: "alice")?.command == .connected)
        #expect(await client.subscribe("/notice/1/remind")?.command == .receipt)
        try await broker.publish(notice(21), to: server.configuration.queue)
        var ids: [String] = []
        while ids.last != "21", let frame = await client.frames.next(timeout: .seconds(60)) {
            guard frame.command == .message else { break }
            ids.append(frame.headers["notice-id"] ?? "?")
        }
        #expect(ids == (1...21).map(String.init))
        client.close()
        await broker.close()
        try await server.stop()
    }

    /// A TCP connection that never sends a request head, and a keep-alive one with no request,
    /// are closed after `NOTICE_HTTP_IDLE_TIMEOUT_SECONDS` (both stayed open for ever before).
    @Test func silentSocketsAreClosed() async throws {
        var configuration = TestServer.configuration()
        configuration.httpIdleTimeout = .seconds(1)
        let server = try await TestServer.start(configuration)
        let silent = try PlainSocket(port: server.port)
        let partial = try PlainSocket(port: server.port)
        try partial.write("GET /health/live HTTP/1.1\r\nHost: x\r\n")  // never finished
        let keptAlive = try PlainSocket(port: server.port)
        try keptAlive.write("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        let (answer, silence, rest) = await blocking {
            (
                keptAlive.readUntilClosed(timeout: .seconds(30)), silent.readUntilClosed(timeout: .seconds(30)),
                partial.readUntilClosed(timeout: .seconds(30))
            )
        }
        #expect(answer.hasPrefix("HTTP/1.1 200"), "answered, then closed when idle")
        #expect(silence.isEmpty && silent.closedByServer)
        #expect(rest.isEmpty && partial.closedByServer)
        #expect(keptAlive.closedByServer)
        // A WebSocket session with heart-beats is not idle HTTP: it stays.
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let broker = await TestBroker()
        let check = try PlainSocket(port: server.port)
        _ = await blocking { check.readUntilClosed(timeout: .seconds(30)) }  // a full idle period has passed
        try await broker.publish(notice(3), to: server.configuration.queue)
        #expect(await alice.frames.next()?.headers["notice-id"] == "3")
        // Closed here, so that a failure above does not hold the server's shutdown open.
        for socket in [silent, partial, keptAlive, check] { socket.close() }
        alice.close()
        await broker.close()
        try await server.stop()
    }

    /// A request head that does not parse gets `400` and a close at once (it got silence, and
    /// the connection stayed open until the idle timeout, before); a good one is served as ever.
    @Test(arguments: [
        "GARBAGE\r\n\r\n", "GET /health/live HTTP/1.1\r\nAuthorization: Bearer \u{1}\r\n\r\n", "FOO /api/notices HTTP/1.1\r\n\r\n",
        "GET /health/live HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ])
    func unparsableRequestsAreRefusedAtOnce(_ request: String) async throws {
        let server = try await TestServer.start()  // the idle timeout is a minute
        let socket = try PlainSocket(port: server.port)
        try socket.write(request)
        let answer = await blocking { socket.readUntilClosed(timeout: .seconds(30)) }
        #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
        #expect(socket.closedByServer)
        let good = try PlainSocket(port: server.port)
        try good.write("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(await blocking { good.readUntilClosed(timeout: .seconds(30)) }.hasPrefix("HTTP/1.1 200"))
        socket.close()
        good.close()
        try await server.stop()
    }

    /// A message over `NOTICE_MAX_MESSAGE_BYTES` is dead-lettered with the reason, unparsed;
    /// the queue flows on.
    @Test func oversizedMessagesAreDeadLetteredWithTheReason() async throws {
        var configuration = TestServer.configuration()
        configuration.maxMessageBytes = 4096
        let server = try await TestServer.start(configuration)
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let broker = await TestBroker()
        let big = #"{"userIds":["# + (1...1000).map { "\"\($0)\"" }.joined(separator: ",") + "]}"
        try await broker.publish(big, to: server.configuration.queue)
        try await broker.publish(notice(9), to: server.configuration.queue)
        #expect(await alice.frames.next()?.headers["notice-id"] == "9")
        let deadLetters = await TestBroker(consume: server.configuration.deadLetterQueue)
        let dead = await deadLetters.take(1)
        #expect(dead.first?.message.body == Array(big.utf8))
        let reason = dead.first?.message.properties.headers?["x-notice-error"]?.textValue ?? ""
        #expect(reason == "message of \(big.utf8.count) bytes is over NOTICE_MAX_MESSAGE_BYTES (4096)")
        #expect(try await server.storedCount() == 1)
        alice.close()
        await deadLetters.close()
        await broker.close()
        try await server.stop()
    }

    /// Routing keys fit AMQP's 255 bytes whatever the user id (128 characters of 4 bytes, or
    /// of dots that escape to 3): a longer one is a digest, the same on every node.
    @Test func routingKeysFitAShortString() {
        #expect(ClusterRelay.routingKey(forUser: "42") == "user.42")
        #expect(ClusterRelay.routingKey(forUser: "~x") == "user.%7Ex", "no escaped id starts with ~")
        for id in [String(repeating: "😀", count: 128), String(repeating: ".", count: 128), String(repeating: "a", count: 251)] {
            let key = ClusterRelay.routingKey(forUser: id)
            #expect(key.utf8.count <= 255)
            #expect(key.hasPrefix("user.~") && key.utf8.count == 70)
            #expect(ClusterRelay.routingKey(forUser: id) == key)
        }
        #expect(ClusterRelay.routingKey(forUser: String(repeating: "a", count: 250)) == "user." + String(repeating: "a", count: 250))
        #expect(
            ClusterRelay.routingKey(forUser: String(repeating: "😀", count: 128))
                != ClusterRelay.routingKey(forUser: String(repeating: "😁", count: 128))
        )
    }

    /// A user whose id does not fit a routing key connects on a relaying node and gets their
    /// notices; the relay connection stays up (its bind failed, and was re-declared on every
    /// reconnect, before).
    @Test func aUserWithALongIdIsRelayed() async throws {
        let longId = String(repeating: "é", count: 128)
        var configuration = TestServer.configuration()
        configuration.devTokens = ["alice": "1", "long": longId]
        configuration.clusterDeliveryMode = .on
        let server = try await TestServer.start(configuration)
        let client = try await server.client()
        #expect(await client.connect(token: "long")?.command == .connected)
        #expect(await client.subscribe("/notice/remind")?.command == .receipt)
        let broker = await TestBroker()
        try await broker.publish(#"{"id":1,"userId":"\#(longId)"}"#, to: server.configuration.queue)
        #expect(await client.frames.next()?.headers["notice-id"] == "1")
        // Another node's notice for that user comes through the relay.
        let headers = AMQPTable([
            .init(key: ClusterRelay.originHeader, value: .text("another-node")),
            .init(key: ClusterRelay.noticeIdHeader, value: .text("2")),
            .init(key: ClusterRelay.recipientHeader, value: .text(longId)),
        ])
        try await broker.connection.publish(
            AMQPMessage(
                body: Array(#"{"id":"2","userId":"\#(longId)"}"#.utf8),
                properties: AMQPProperties(contentType: "application/json", headers: headers)
            ),
            exchange: server.configuration.deliverExchange,
            routingKey: ClusterRelay.routingKey(forUser: longId)
        )
        #expect(await client.frames.next()?.headers["notice-id"] == "2")
        #expect(try await server.get("/health/ready").status == 200)
        client.close()
        await broker.close()
        try await server.stop()
    }
}
