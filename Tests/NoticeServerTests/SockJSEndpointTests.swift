import Foundation
import HTTPTypes
import STOMP
import Testing

@testable import NoticeServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// STOMP over SockJS on the real service (SPEC §3): the legacy flow on each transport the
/// browser may fall back to, the origin rule, the `access_token` parameter, and metrics.
@Suite(.serialized) struct SockJSEndpointTests {
    @Test(arguments: SockJSStompClient.Transport.allCases)
    func legacyFlowReceivesANoticeFromRabbitMQ(transport: SockJSStompClient.Transport) async throws {
        let server = try await TestServer.start()
        let client = try await SockJSStompClient.open(port: server.port, transport: transport)
        let connected = try #require(await client.connect(token: "alice"))
        #expect(connected.command == .connected)
        #expect(connected.headers["user-name"] == "1")
        #expect(await client.subscribe("/notice/1/remind")?.command == .receipt)
        // stomp.js `send('test')`: the legacy liveness probe breaks nothing.
        client.send(StompFrame(.send, headers: ["destination": "test"]), version: .v1_1)
        let broker = await TestBroker()
        try await broker.publish(#"{"userId":1,"title":"over \#(transport.rawValue)","content":"<b>hi</b>"}"#, to: server.configuration.queue)
        let message = try #require(await client.frames.next())
        #expect(message.command == .message)
        #expect(message.headers["destination"] == "/notice/1/remind")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(message.body)) as? [String: Any])
        #expect(body["title"] as? String == "over \(transport.rawValue)")
        #expect(body["userId"] as? String == "1")
        client.close()
        await broker.close()
        try await server.stop()
    }

    @Test func accessTokenFromTheSessionURL() async throws {
        let server = try await TestServer.start()
        let client = try await SockJSStompClient.open(port: server.port, transport: .xhrStreaming, query: "?access_token=bob")
        let connected = try #require(await client.connect(token: nil))
        #expect(connected.command == .connected)
        #expect(connected.headers["user-name"] == "2")
        client.close()
        try await server.stop()
    }

    @Test func missingTokenIsAnErrorAndTheSessionCloses() async throws {
        let server = try await TestServer.start()
        let client = try await SockJSStompClient.open(port: server.port, transport: .xhrPolling)
        let error = try #require(await client.connect(token: nil))
        #expect(error.command == .error)
        #expect(error.headers["message"] == "unauthorized")
        // After the ERROR (in an `a` frame), the SockJS session ends with a close frame.
        var letters: [String] = []
        while let letter = await client.sockJSFrames.next(timeout: .seconds(30)) {
            letters.append(letter)
            if letter == "c" { break }
        }
        #expect(letters.last == "c", "\(letters)")
        client.close()
        try await server.stop()
    }

    @Test func foreignOriginsAreRefusedOnEverySockJSRoute() async throws {
        let server = try await TestServer.start()
        let evil = ["Origin": "https://evil.example"]
        for path in ["/ws/info", "/ws", "/ws/iframe.html"] {
            let answer = try await server.get(path, headers: evil)
            #expect(answer.status == 403, "\(path)")
            #expect(answer.body.contains("forbidden_origin"))
        }
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)/ws/000/abc/xhr_streaming")!)
        request.httpMethod = "POST"
        request.setValue("https://evil.example", forHTTPHeaderField: "Origin")
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 403)
        await #expect(throws: (any Error).self) {
            try await StompTestClient.open(port: server.port, path: "/ws/000/abc/websocket", headers: [.origin: "https://evil.example"])
        }
        // An allowed origin gets CORS for itself.
        let allowed = try await server.get("/ws/info", headers: ["Origin": "ws://127.0.0.1"])
        #expect(allowed.status == 200)
        #expect(allowed.body.contains("\"websocket\":true"))
        // The raw STOMP endpoint and the greeting share /ws.
        #expect(try await server.get("/ws").body == "Welcome to SockJS!\n")
        let raw = try await server.client()
        #expect(await raw.connect(token: "carol")?.command == .connected)
        raw.close()
        try await server.stop()
    }

    @Test func sessionsAreCountedPerTransport() async throws {
        let server = try await TestServer.start()
        let client = try await SockJSStompClient.open(port: server.port, transport: .xhrStreaming)
        #expect(await client.connect(token: "alice")?.command == .connected)
        let metrics = try await server.get("/metrics").body
        #expect(metrics.contains(#"notice_sessions{transport="sockjs_xhr_streaming"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"notice_connections{transport="sockjs_xhr_streaming"} 1"#))
        client.close()
        try await server.stop()
    }
}

extension SockJSEndpointTests {
    @Test func shutdownTellsSockJSSessionsBeforeTheServerStops() async throws {
        let server = try await TestServer.start()
        let client = try await SockJSStompClient.open(port: server.port, transport: .xhrStreaming)
        #expect(await client.connect(token: "alice")?.command == .connected)
        try await server.stop()
        let error = try #require(await client.frames.next())
        #expect(error.command == .error)
        #expect(error.headers["message"] == "server shutting down")
        client.close()
    }
}
