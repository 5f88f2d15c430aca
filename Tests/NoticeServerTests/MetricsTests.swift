import Foundation
import NoticeServer
import STOMP
import Testing

/// `/metrics` (SPEC §7): Prometheus text with the service's series, per instance.
@Suite(.serialized) struct MetricsTests {
    static func value(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test func countsWhatFlowsThrough() async throws {
        let server = try await TestServer.start()
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let broker = await TestBroker()
        try await broker.publish(#"{"id":1,"userId":1}"#, to: server.configuration.queue)
        try await broker.publish("not json", to: server.configuration.queue)
        try await broker.publish(#"{"id":2,"userId":1}"#, to: server.configuration.queue)
        #expect(await alice.frames.next()?.command == .message)
        #expect(await alice.frames.next()?.command == .message)

        // A frame can reach the client before the counters behind it are recorded (the push
        // counts after its write returns): read until they are, then check each exactly.
        let expected: [(String, Double)] = [
            ("notice_consumed_total", 3), ("notice_stored_total", 2), ("notice_dead_lettered_total", 1),
            ("notice_pushed_total", 2), ("notice_push_latency_seconds_count", 2),
        ]
        var metrics = try await server.get("/metrics")
        let deadline = ContinuousClock.now + .seconds(30)
        while !expected.allSatisfy({ Self.value(metrics.body, $0.0) == $0.1 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            metrics = try await server.get("/metrics")
        }
        #expect(metrics.status == 200)
        let text = metrics.body
        #expect(Self.value(text, "notice_consumed_total") == 3)
        #expect(Self.value(text, "notice_stored_total") == 2)
        #expect(Self.value(text, "notice_dead_lettered_total") == 1)
        #expect(Self.value(text, "notice_pushed_total") == 2)
        #expect(Self.value(text, #"notice_sessions{transport="websocket"}"#) == 1)
        #expect(Self.value(text, #"notice_connections{transport="websocket"}"#) == 1)
        #expect(Self.value(text, "notice_push_latency_seconds_count") == 2)
        #expect(text.contains("notice_broker_reconnects_total"))
        #expect(!text.contains("alice"))
        alice.close()
        await broker.close()
        try await server.stop()
    }
}
