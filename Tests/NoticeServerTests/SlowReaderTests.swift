import Foundation
import HTTPTypes
import Logging
import NoticeCore
import STOMP
import Synchronization
import Testing

@testable import NoticeServer

/// The STOMP rules of SPEC §4 as a browser meets them, over a real WebSocket.
@Suite(.serialized) struct SlowReaderTests {
    @Test func aReaderThatNeverReadsIsCutOffAndOthersGetEverything() async throws {
        var configuration = TestServer.configuration()
        configuration.maxOutboundBytes = 262_144
        let server = try await TestServer.start(configuration)
        let bystander = try await server.subscribedClient(token: "alice", user: "1")

        let slow = try RawWebSocket(port: server.port)
        try slow.sendText("CONNECT\naccept-version:1.2\nheart-beat:0,0\nAuthorization:Bearer alice\n\n\0")
        try slow.sendText("SUBSCRIBE\nid:0\ndestination:/notice/1/remind\nreceipt:r\n\n\0")
        // Subscribed once its RECEIPT is here (after CONNECTED); from then on it reads nothing.
        let receipt = try #require(slow.readFrame(), "no CONNECTED")
        #expect(String(decoding: receipt.payload, as: UTF8.self).hasPrefix("CONNECTED"))
        let subscribed = try #require(slow.readFrame(), "no RECEIPT")
        #expect(String(decoding: subscribed.payload, as: UTF8.self).hasPrefix("RECEIPT"))

        let broker = await TestBroker()
        let content = String(repeating: "x", count: 8_000)
        let count = 800
        for id in 1...count {
            try await broker.publish(#"{"id":\#(id),"userId":1,"content":"\#(content)"}"#, to: server.configuration.queue)
        }
        var received = 0
        while received < count, let frame = await bystander.frames.next(timeout: .seconds(30)) {
            if frame.command == .message { received += 1 }
        }
        #expect(received == count)
        // 6.4 MB were sent to a socket that reads nothing; past the grace period the server
        // gives up on it: its session ends (the gauge drops to the bystander's one) while the
        // socket is still unread. Only then is it read, to see the close.
        let cutOff = ContinuousClock.now + .seconds(60)
        while try await MetricsTests.value(server.get("/metrics").body, #"notice_sessions{transport="websocket"}"#) != 1,
            ContinuousClock.now < cutOff
        {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await MetricsTests.value(server.get("/metrics").body, #"notice_sessions{transport="websocket"}"#) == 1)
        #expect(slow.drainUntilClosed(timeout: .seconds(30)))
        bystander.close()
        await broker.close()
        try await server.stop()
    }
}

@Suite(.serialized) struct AbuseTests {
    @Test func tenThousandSubscriptionsStopAtTheLimit() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        #expect(await client.connect(token: "alice")?.command == .connected)
        for chunk in stride(from: 0, to: 10_000, by: 200) {
            client.sendRaw((chunk..<chunk + 200).map { "SUBSCRIBE\nid:\($0)\ndestination:/notice/remind\n\n\0" }.joined())
        }
        let error = try #require(await client.frames.next())
        #expect(error.headers["message"] == "too many subscriptions")
        #expect(await client.waitUntilClosed())
        try await server.stop()
    }

    @Test func invalidUTF8InAFrameIsASyntaxError() async throws {
        let server = try await TestServer.start()
        let socket = try RawWebSocket(port: server.port, receiveBuffer: 65_536)
        try socket.sendBinary(Array("CONNECT\naccept-version:1.2\nAuthorization:Bearer alice\n\n\0".utf8))
        try socket.sendBinary(Array("SEND\ndestination:/app/".utf8) + [0xC3, 0x28] + Array("\n\n\0".utf8))
        #expect(socket.drainUntilClosed(timeout: .seconds(30)))
        try await server.stop()
    }
}
