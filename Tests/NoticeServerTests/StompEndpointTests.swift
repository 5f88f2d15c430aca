import Foundation
import HTTPTypes
import Logging
import NoticeCore
import STOMP
import StompServer
import Synchronization
import Testing

@testable import NoticeServer

/// The STOMP rules of SPEC §4 as a browser meets them, over a real WebSocket.
@Suite(.serialized) struct StompEndpointTests {
    @Test func subscribingToAnotherUsersDestinationIsForbiddenAndCloses() async throws {
        let server = try await TestServer.start()
        let alice = try await server.client()
        #expect(await alice.connect(token: "alice")?.headers["user-name"] == "1")
        let error = try #require(await alice.subscribe("/notice/2/remind"))
        #expect(error.command == .error)
        #expect(error.headers["message"] == "forbidden")
        #expect(await alice.waitUntilClosed())
        try await server.stop()
    }

    @Test func unknownOrMissingTokenIsUnauthorized() async throws {
        let server = try await TestServer.start()
        for token in ["nope", nil] as [String?] {
            let client = try await server.client()
            let error = try #require(await client.connect(token: token))
            #expect(error.command == .error)
            #expect(error.headers["message"] == "unauthorized")
            #expect(await client.waitUntilClosed())
        }
        try await server.stop()
    }

    @Test func tokenFromTheHandshakeQuery() async throws {
        let server = try await TestServer.start()
        let client = try await StompTestClient.open(port: server.port, path: "/ws?access_token=bob")
        let connected = try #require(await client.connect(token: nil, acceptVersion: "1.1,1.0"))
        #expect(connected.command == .connected)
        #expect(connected.headers["user-name"] == "2")
        #expect(connected.headers["version"] == "1.1")
        client.close()
        try await server.stop()
    }

    @Test func legacyFlowProbeAndDisconnectReceipt() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        #expect(await client.connect(token: "alice", acceptVersion: "1.1,1.0", heartBeat: "10000,10000")?.headers["heart-beat"] == "10000,10000")
        #expect(await client.subscribe("/notice/1/remind")?.command == .receipt)
        // stomp.js `send('test')`: a SEND without destination or body.
        client.send(StompFrame(.send), version: .v1_1)
        client.send(StompFrame(.send, headers: ["destination": "test", "receipt": "probe"]), version: .v1_1)
        #expect(await client.frames.next()?.headers["receipt-id"] == "probe")
        client.send(StompFrame(.disconnect, headers: ["receipt": "bye"]), version: .v1_1)
        let receipt = try #require(await client.frames.next())
        #expect(receipt.command == .receipt)
        #expect(receipt.headers["receipt-id"] == "bye")
        #expect(await client.waitUntilClosed())
        try await server.stop()
    }

    @Test func connectionWithoutConnectIsClosed() async throws {
        var configuration = TestServer.configuration()
        configuration.connectTimeout = .seconds(1)
        let server = try await TestServer.start(configuration)
        // Before the connection exists: its timer cannot start earlier.
        let opened = ContinuousClock.now
        let client = try await server.client()
        let error = try #require(await client.frames.next(timeout: .seconds(30)))
        #expect(ContinuousClock.now - opened >= .seconds(1), "not before the connect timeout")
        #expect(error.headers["message"] == "connect timeout")
        #expect(await client.waitUntilClosed())
        try await server.stop()
    }

    @Test func oversizedFramesAndHeaderFloodsGetErrorAndOthersCarryOn() async throws {
        var configuration = TestServer.configuration()
        configuration.maxFrameBytes = 4096
        let server = try await TestServer.start(configuration)
        let bystander = try await server.subscribedClient(token: "carol", user: "3")

        let big = try await server.client()
        #expect(await big.connect(token: "alice")?.command == .connected)
        big.sendRaw("SEND\ndestination:/app/x\n\n" + String(repeating: "x", count: 5000) + "\0")
        #expect(await big.frames.next()?.headers["message"] == "frame too large")
        #expect(await big.waitUntilClosed())

        let flood = try await server.client()
        #expect(await flood.connect(token: "bob")?.command == .connected)
        flood.sendRaw("SEND\n" + (0..<65).map { "h\($0):v\n" }.joined() + "\n\0")
        #expect(await flood.frames.next()?.headers["message"] == "frame too large")
        #expect(await flood.waitUntilClosed())

        let garbage = try await server.client()
        garbage.sendRaw("HELLO\n\n\0")
        #expect(await garbage.frames.next()?.headers["message"] == "syntax error")
        #expect(await garbage.waitUntilClosed())

        let broker = await TestBroker()
        try await broker.publish(#"{"userId":3,"title":"fine"}"#, to: server.configuration.queue)
        #expect(await bystander.frames.next()?.command == .message)
        bystander.close()
        await broker.close()
        try await server.stop()
    }

    @Test func silentClientIsClosedAfterTwiceItsHeartBeat() async throws {
        var configuration = TestServer.configuration()
        configuration.session.heartBeatMillis = 500
        let server = try await TestServer.start(configuration)
        let client = try await server.client()
        // The client promises a beat every 2 s and wants one every 500 ms: the server beats
        // several times, then closes it once it has heard nothing for twice 2 s. The client's
        // last word is its CONNECT, sent after `spoke`: the close cannot come sooner than 4 s
        // after it; the upper bound only has to catch a session never closed.
        let spoke = ContinuousClock.now
        let connected = try #require(await client.connect(token: "alice", heartBeat: "2000,500"))
        #expect(connected.headers["heart-beat"] == "500,2000")
        let error = try #require(await client.frames.next(timeout: .seconds(30)))
        #expect(ContinuousClock.now - spoke >= .seconds(4), "not before twice the client's heart-beat")
        #expect(error.headers["message"] == "heart-beat timeout")
        #expect(client.heartBeats.count >= 1)
        #expect(await client.waitUntilClosed())
        try await server.stop()
    }

    @Test func sessionsPerUserAreCapped() async throws {
        var configuration = TestServer.configuration()
        configuration.maxSessionsPerUser = 2
        let server = try await TestServer.start(configuration)
        let first = try await server.client()
        let second = try await server.client()
        let third = try await server.client()
        #expect(await first.connect(token: "alice")?.command == .connected)
        #expect(await second.connect(token: "alice")?.command == .connected)
        #expect(await third.connect(token: "alice")?.headers["message"] == "too many sessions")
        first.close()
        #expect(await first.waitUntilClosed())
        // The server has let the first go once its session gauge drops to the second's one
        // (it drops after the hub's unregistering): only then is there room for another.
        let released = ContinuousClock.now + .seconds(30)
        while try await MetricsTests.value(server.get("/metrics").body, #"notice_sessions{transport="websocket"}"#) != 1,
            ContinuousClock.now < released
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        let fourth = try await server.client()
        #expect(await fourth.connect(token: "alice")?.command == .connected)
        second.close()
        fourth.close()
        try await server.stop()
    }

    @Test func shutdownTellsSessionsBeforeClosing() async throws {
        let server = try await TestServer.start()
        let client = try await server.subscribedClient(token: "alice", user: "1")
        try await server.stop()
        let error = try #require(await client.frames.next())
        #expect(error.command == .error)
        #expect(error.headers["message"] == "server shutting down")
        #expect(await client.waitUntilClosed())
    }

    @Test func crossOriginHandshakesAreRefused() async throws {
        let server = try await TestServer.start()
        let evil = try await server.get("/ws", headers: ["Origin": "https://evil.example"])
        #expect(evil.status == 403)
        #expect(evil.body.contains("forbidden_origin"))
        // Without Upgrade, GET /ws is SockJS's greeting.
        #expect(try await server.get("/ws").body == "Welcome to SockJS!\n")
        // A real upgrade request from a foreign origin, with curl.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
            "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
            "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H", "Origin: https://evil.example",
            "http://127.0.0.1:\(server.port)/ws",
        ]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        curl.waitUntilExit()
        #expect(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "403")
        // A handshake without its key: refused with 400, not upgraded.
        let broken = Process()
        broken.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        broken.arguments = [
            "-s", "-m", "5", "-w", " %{http_code}", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
            "-H", "Sec-WebSocket-Version: 13", "http://127.0.0.1:\(server.port)/ws",
        ]
        let brokenOutput = Pipe()
        broken.standardOutput = brokenOutput
        try broken.run()
        broken.waitUntilExit()
        let answer = String(decoding: brokenOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(answer.hasSuffix(" 400") && answer.contains("bad_handshake"))
        try await server.stop()
    }

    /// The WebSocket layer of `/ws` (SwiftNIO handlers): pings answered, a fragmented message
    /// joined even with a ping between its fragments, the client's close echoed, then TCP closed.
    @Test func webSocketFragmentsPingsAndTheClosingHandshake() async throws {
        let server = try await TestServer.start()
        let socket = try RawWebSocket(port: server.port)
        try socket.send(opcode: 0x9, Array("are you there".utf8))
        let pong = try #require(socket.readFrame())
        #expect(pong.opcode == 0xA && pong.payload == Array("are you there".utf8))

        try socket.send(opcode: 0x1, fin: false, Array("CONNECT\naccept-ver".utf8))
        try socket.send(opcode: 0x9, Array("mid".utf8))
        try socket.send(opcode: 0x0, fin: false, Array("sion:1.2\nAuthorization:Bea".utf8))
        try socket.send(opcode: 0x0, fin: true, Array("rer alice\n\n\0".utf8))
        #expect(try #require(socket.readFrame()).opcode == 0xA)
        let connected = try #require(socket.readFrame())
        #expect(connected.opcode == 0x1 && connected.fin)
        #expect(String(decoding: connected.payload, as: UTF8.self).hasPrefix("CONNECTED\n"))

        try socket.send(opcode: 0x8, [0x03, 0xE8])
        let close = try #require(socket.readFrame())
        #expect(close.opcode == 0x8 && close.payload == [0x03, 0xE8])
        #expect(socket.drainUntilClosed(timeout: .seconds(30)))
        try await server.stop()
    }

    /// A client that just drops the TCP connection (no close frame, no DISCONNECT) is gone
    /// on the server too: the session and the socket are released. (Hummingbird's server
    /// allows half-closure, so the end arrives as `inputClosed`, not as the channel closing.)
    @Test func aClientThatDropsTheConnectionIsReleased() async throws {
        let server = try await TestServer.start()
        var sockets: [RawWebSocket] = []
        for _ in 0..<5 {
            let socket = try RawWebSocket(port: server.port)
            try socket.sendText("CONNECT\naccept-version:1.2\nheart-beat:0,0\nAuthorization:Bearer alice\n\n\0")
            #expect(try #require(socket.readFrame()).opcode == 0x1)
            sockets.append(socket)
        }
        func gauges() async throws -> (sessions: Double?, connections: Double?) {
            let text = try await server.get("/metrics").body
            return (
                MetricsTests.value(text, #"notice_sessions{transport="websocket"}"#),
                MetricsTests.value(text, #"notice_connections{transport="websocket"}"#)
            )
        }
        #expect(try await gauges() == (5, 5))
        sockets.removeAll()  // closes the five sockets
        let deadline = ContinuousClock.now + .seconds(30)
        var now = try await gauges()
        while now != (0, 0), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            now = try await gauges()
        }
        #expect(now == (0, 0))
        try await server.stop()
    }

    @Test func aFloodOfFramesIsServedInOrderWithoutLoss() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        #expect(await client.connect(token: "alice")?.command == .connected)
        let count = 5_000
        for chunk in stride(from: 0, to: count, by: 500) {
            client.sendRaw((chunk..<chunk + 500).map { "SEND\ndestination:/app/x\nreceipt:\($0)\n\nping\0" }.joined())
        }
        var expected = 0
        while expected < count, let frame = await client.frames.next() {
            #expect(frame.headers["receipt-id"] == String(expected))
            expected += 1
        }
        #expect(expected == count)
        client.close()
        try await server.stop()
    }

    @Test func subprotocolPreference() {
        #expect(WebSocketEndpoint.chooseSubprotocol("v10.stomp, v11.stomp") == "v11.stomp")
        #expect(WebSocketEndpoint.chooseSubprotocol("v12.stomp,v10.stomp") == "v12.stomp")
        #expect(WebSocketEndpoint.chooseSubprotocol("mqtt") == nil)
        #expect(WebSocketEndpoint.chooseSubprotocol(nil) == nil)
    }

    @Test func tokensNeverReachTheLogs() async throws {
        let capture = CapturingLogHandler()
        var configuration = TestServer.configuration()
        configuration.logLevel = .trace
        configuration.devTokens = ["secret-token-alice": "1"]
        let server = try await TestServer.start(configuration, logHandler: capture)
        let client = try await server.client()
        #expect(await client.connect(token: "secret-token-alice")?.command == .connected)
        let wrong = try await server.client()
        #expect(await wrong.connect(token: "secret-token-wrong")?.command == .error)
        client.close()
        try await server.stop()
        #expect(capture.lines.count > 3)
        #expect(capture.lines.contains { $0.contains("stomp connected") && $0.contains("user.id") })
        let leaks = capture.lines.filter { $0.contains("secret-token") }
        #expect(leaks.isEmpty, "\(leaks)")
    }
}
