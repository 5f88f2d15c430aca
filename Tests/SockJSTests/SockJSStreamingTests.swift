import Foundation
import NIOHTTP1
import NoticeTesting
import Testing

@testable import SockJS

/// The streaming and WebSocket transports, timers and bounds (sockjs-protocol 0.3.3).
extension SockJSProtocolTests {
    @Test func xhrStreamingPreludeFramesAndResponseLimit() async throws {
        let server = try await EchoServer.start()
        let url = session(server)
        let stream = try await HTTPTestClient.stream(.POST, url + "/xhr_streaming", delimiter: "\n")
        #expect(stream.status == 200)
        #expect(stream["content-type"] == "application/javascript; charset=UTF-8")
        #expect(stream["cache-control"] == Self.noCache)
        #expect(stream["access-control-allow-origin"] == "*")
        #expect(stream["x-accel-buffering"] == "no")
        #expect(await stream.next() == String(repeating: "h", count: 2048) + "\n")
        #expect(await stream.next() == "o\n")
        let message = "\"" + String(repeating: "x", count: 128) + "\""
        for _ in 0..<31 {
            #expect(try await HTTPTestClient.post(url + "/xhr_send", body: "[\(message)]").status == 204)
            #expect(await stream.next() == "a[\(message)]\n")
        }
        // 31 × 133 bytes > 4096: the server ends the response; the session stays for the next one.
        #expect(await stream.ended())
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["after"]"#).status == 204)
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "a[\"after\"]\n")
        try await server.stop()
    }

    @Test func eventSourceFramesAndEscapes() async throws {
        let server = try await EchoServer.start()
        let url = session(server)
        let stream = try await HTTPTestClient.stream(.GET, url + "/eventsource", delimiter: "\r\n")
        #expect(stream["content-type"] == "text/event-stream; charset=UTF-8")
        #expect(stream["cache-control"] == Self.noCache)
        #expect(await stream.next() == "\r\n")
        #expect(await stream.next() == "data: o\r\n")
        #expect(await stream.next() == "\r\n")
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["  \u0000\n\r "]"#).status == 204)
        #expect(await stream.next() == "data: a[\"  \\u0000\\n\\r \"]\r\n")
        stream.cancel()
        try await server.stop()
    }

    @Test func htmlFileCallbackPreludeAndFrames() async throws {
        let server = try await EchoServer.start()
        let missing = try await HTTPTestClient.get(server.base + "/a/a/htmlfile")
        #expect(missing.status == 500)
        #expect(missing.body.contains("\"callback\" parameter required"))
        let invalid = try await HTTPTestClient.get(server.base + "/a/a/htmlfile?c=%3Cscript%3E")
        #expect(invalid.status == 500)
        #expect(invalid.body.contains("invalid \"callback\" parameter"))
        let url = session(server)
        let stream = try await HTTPTestClient.stream(.GET, url + "/htmlfile?c=%63allback", delimiter: "</script>\r\n")
        #expect(stream["content-type"] == "text/html; charset=UTF-8")
        #expect(stream["cache-control"] == Self.noCache)
        let prelude = try #require(await stream.next())
        #expect(prelude.contains("var c = parent.callback;"))
        let head = try #require(prelude.range(of: "<script>\np(\"o\");"))
        #expect(prelude.utf8.count - prelude[head.lowerBound...].utf8.count > 1024)
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["x"]"#).status == 204)
        #expect(await stream.next() == "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n")
        // A message that holds markup cannot end the script element it is written into.
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["</script><script>alert(1)</script>"]"#).status == 204)
        let hostile = try #require(await stream.next())
        #expect(hostile == "<script>\np(\"a[\\\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\\"]\");\n</script>\r\n")
        #expect(hostile.components(separatedBy: "<script>").count == 2, "one script element per frame")
        stream.cancel()
        try await server.stop()
    }

    @Test func webSocketTransportEchoesIgnoresEmptyAndDropsBrokenJSON() async throws {
        let server = try await EchoServer.start()
        let ws = try await BlockingWebSocket.open(port: server.port, path: "/echo/000/\(UUID().uuidString)/websocket")
        #expect(await ws.next() == "o")
        ws.send("")
        ws.send(#"["a"]"#)
        #expect(await ws.next() == #"a["a"]"#)
        ws.send(#""single""#)
        #expect(await ws.next() == #"a["single"]"#)
        ws.send(#"["a"#)
        #expect(await ws.closed())
        try await server.stop()
    }

    @Test func webSocketCloseFrameThenClose() async throws {
        let server = try await EchoServer.start()
        let ws = try await BlockingWebSocket.open(port: server.port, path: "/close/000/\(UUID().uuidString)/websocket")
        #expect(await ws.next() == "o")
        #expect(await ws.next() == #"c[3000,"Go away!"]"#)
        #expect(await ws.closed())
        try await server.stop()
    }

    @Test func webSocketURLWithoutUpgrade() async throws {
        let server = try await EchoServer.start()
        let plain = try await HTTPTestClient.get(server.base + "/0/0/websocket")
        #expect(plain.status == 400)
        #expect(plain.body.contains("Can \"Upgrade\" only to \"WebSocket\"."))
        let badConnection = try await HTTPTestClient.get(
            server.base + "/0/0/websocket",
            headers: [("Upgrade", "WebSocket"), ("Connection", "close")]
        )
        #expect(badConnection.status == 400)
        let post = try await HTTPTestClient.post(server.base + "/0/0/websocket")
        #expect(post.status == 405)
        #expect(post["allow"] == "GET")
        #expect(post.body.isEmpty)
        try await server.stop()
    }

    @Test func rawWebSocketHasNoFraming() async throws {
        let server = try await EchoServer.start()
        let ws = try await BlockingWebSocket.open(port: server.port, path: "/echo/websocket")
        ws.send("Hello world!\u{FFFF}")
        #expect(await ws.next() == "Hello world!\u{FFFF}")
        ws.close()
        let closing = try await BlockingWebSocket.open(port: server.port, path: "/close/websocket")
        #expect(await closing.closed())
        try await server.stop()
    }

    @Test func serverEscapesWhatSockJSEscapes() async throws {
        let server = try await EchoServer.start()
        let url = session(server)
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "o\n")
        let escapable: [ClosedRange<UInt32>] = [0x200C...0x200F, 0x2028...0x202F, 0x2060...0x206F, 0xFFF0...0xFFFF]
        let scalars = escapable.flatMap { $0 }.compactMap(Unicode.Scalar.init)
        let escaped = scalars.map { "\\u" + String(format: "%04x", $0.value) }.joined()
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: "[\"\(escaped)\"]").status == 204)
        let r = try await HTTPTestClient.post(url + "/xhr")
        #expect(r.body == "a[\"\(escaped)\"]\n")
        try await server.stop()
    }

    @Test func heartbeatWhenIdle() async throws {
        var configuration = EchoServer.testConfiguration
        configuration.heartbeatInterval = .milliseconds(600)
        let server = try await EchoServer.start(configuration)
        let url = session(server)
        // Before the open frame is written: the interval counts from it, so the heartbeat
        // cannot come sooner than 600 ms after this.
        let started = ContinuousClock.now
        let stream = try await HTTPTestClient.stream(.POST, url + "/xhr_streaming", delimiter: "\n")
        _ = await stream.next()
        #expect(await stream.next() == "o\n")
        // 600 ms here (25 s by default); the upper bound only has to catch a missing heartbeat.
        #expect(await stream.next(timeout: .seconds(30)) == "h\n")
        #expect(ContinuousClock.now - started >= .milliseconds(600))
        stream.cancel()
        try await server.stop()
    }

    @Test func sessionOutlivesItsReceiverByTheDisconnectDelayAndKeepsMessages() async throws {
        var configuration = EchoServer.testConfiguration
        // Long enough that one request between two polls never outlasts it on a busy machine.
        configuration.disconnectDelay = .seconds(5)
        let server = try await EchoServer.start(configuration)
        let url = session(server)
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "o\n")
        // Queued while no receiver is attached: the next receiver gets them.
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["kept"]"#).status == 204)
        // Before the last poll, so before its receiver detaches: the delay counts from then.
        let lastPoll = ContinuousClock.now
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "a[\"kept\"]\n")
        // Without a receiver for the disconnect delay the session is forgotten: not sooner,
        // and (the reaper runs every second) soon after.
        let deadline = ContinuousClock.now + .seconds(30)
        while server.echo.sessionCount > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(server.echo.sessionCount == 0)
        #expect(ContinuousClock.now - lastPoll >= .seconds(5), "not before the disconnect delay")
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["late"]"#).status == 404)
        try await server.stop()
    }

    @Test func clientThatNeverPollsGetsItsSessionClosed() async throws {
        let server = try await EchoServer.start()
        let url = session(server)
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "o\n")
        // 16 KiB may wait for the browser; the echo queues 3 × 7 KiB.
        let chunk = "[\"" + String(repeating: "y", count: 7000) + "\"]"
        for _ in 0..<3 { _ = try await HTTPTestClient.post(url + "/xhr_send", body: chunk) }
        let r = try await HTTPTestClient.post(url + "/xhr")
        #expect(r.body.hasPrefix("c[1013,"))
        try await server.stop()
    }

    @Test func sessionsAreBounded() async throws {
        var configuration = EchoServer.testConfiguration
        configuration.maxSessions = 2
        let server = try await EchoServer.start(configuration)
        #expect(try await HTTPTestClient.post(session(server) + "/xhr").status == 200)
        #expect(try await HTTPTestClient.post(session(server) + "/xhr").status == 200)
        #expect(try await HTTPTestClient.post(session(server) + "/xhr").status == 503)
        try await server.stop()
    }
}

extension SockJSProtocolTests {
    @Test func abortedStreamingReceiverIsNoticed() async throws {
        let server = try await EchoServer.start()
        let id = UUID().uuidString
        let url = server.base + "/000/" + id
        // The first receiver is curl; once it has written the open frame out it holds the
        // session, and then it is killed: the connection drops mid-response.
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("sockjs-curl-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-s", "-N", "-o", output.path, "-X", "POST", "-m", "120", url + "/xhr_streaming"]
        try curl.run()
        defer { if curl.isRunning { kill(curl.processIdentifier, SIGKILL) } }
        let attached = ContinuousClock.now + .seconds(30)
        while !((try? String(contentsOf: output, encoding: .utf8)) ?? "").contains("\no\n"), ContinuousClock.now < attached {
            try await Task.sleep(for: .milliseconds(20))
        }
        let second = try await HTTPTestClient.stream(.POST, url + "/xhr_streaming", delimiter: "\n")
        _ = await second.next()
        #expect(await second.next() == "c[2010,\"Another connection still open\"]\n")
        #expect(await second.ended())
        // SIGKILL: children of Foundation's Process may ignore SIGTERM.
        kill(curl.processIdentifier, SIGKILL)
        curl.waitUntilExit()
        // The server notices the dropped receiver: the session is closed as interrupted.
        let noticed = ContinuousClock.now + .seconds(30)
        while server.echo.existingSession(id: id).map({ !$0.isClosed }) ?? false, ContinuousClock.now < noticed {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(server.echo.existingSession(id: id)?.isClosed ?? true)
        // sockjs-protocol: after an aborted receiver, a new one gets a new session or 1002.
        let third = try await HTTPTestClient.stream(.POST, url + "/xhr_streaming", delimiter: "\n")
        _ = await third.next()
        let answer = await third.next()
        #expect(answer == "o\n" || answer == "c[1002,\"Connection interrupted\"]\n", "\(String(describing: answer))")
        third.cancel()
        try await server.stop()
    }
}

extension SockJSProtocolTests {
    @Test func webSocketSessionsCannotBeReachedByURL() async throws {
        let server = try await EchoServer.start()
        let id = UUID().uuidString
        let ws = try await BlockingWebSocket.open(port: server.port, path: "/echo/000/\(id)/websocket")
        #expect(await ws.next() == "o")
        for sessionPart in [id, "%00ws-1", "websocket-1"] {
            #expect(try await HTTPTestClient.post(server.base + "/000/\(sessionPart)/xhr_send", body: #"["x"]"#).status == 404)
        }
        ws.send(#"["mine"]"#)
        #expect(await ws.next() == #"a["mine"]"#)
        ws.close()
        try await server.stop()
    }
}
