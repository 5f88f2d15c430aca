import ArgumentParser
import Foundation
import HummingbirdWSClient
import Logging
import RabbitMQ
import STOMP
import Synchronization

/// Measures the running service from the outside: N STOMP-over-WebSocket sessions, one per
/// user `1...N` (dev tokens `bench-<i>`), and notices published to the real queue.
///
/// - `latency`: publishes `--count` notices at `--rate` per second (users round-robin), each
///   carrying its publish time; reports publish→receive latency percentiles and losses.
/// - `throughput`: publishes `--count` notices as fast as the broker confirms them and
///   reports notices per second, from the first publish to the last MESSAGE received.
@main
struct NoticeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "notice-bench", abstract: "Load generator for notice-service.")

    enum Mode: String, ExpressibleByArgument { case latency, throughput, connect }

    @Argument var mode: Mode
    @Option(help: "service WebSocket URL") var url = "ws://127.0.0.1:8080/ws"
    @Option(help: "broker URL") var amqpUrl = "amqp://guest:guest@127.0.0.1:5672/"
    @Option(help: "notice queue") var queue = "notice.direct.queue"
    @Option(help: "sessions (users 1...N, tokens bench-1...bench-N)") var users = 100
    @Option(help: "notices to publish") var count = 1000
    @Option(help: "notices per second (latency mode)") var rate = 1000
    @Option(help: "publishes awaiting confirm at once (throughput mode)") var window = 512
    @Option(help: "connect mode: a token used by every CONNECT (warm cache); default: a new token each time (cold)")
    var token: String?

    func run() async throws {
        var logger = Logger(label: "notice-bench")
        logger.logLevel = .error
        if mode == .connect {
            try await measureConnects(logger: logger)
            return
        }
        let results = Results()
        let ready = Counter()
        var sessions: [Task<Void, any Error>] = []
        for user in 1...users {
            sessions.append(Task { try await Self.session(url: url, user: user, results: results, ready: ready, logger: logger) })
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while ready.value.load(ordering: .relaxed) < users {
            guard ContinuousClock.now < deadline else { throw ValidationError("only \(ready.value.load(ordering: .relaxed)) of \(users) sessions subscribed") }
            try await Task.sleep(for: .milliseconds(10))
        }

        let broker = RabbitMQConnection(
            configuration: AMQPConfiguration(url: amqpUrl, connectionName: "notice-bench"),
            topology: AMQPTopology(queues: [.init(name: queue)]),
            logger: logger
        )
        broker.start()
        await broker.waitUntilConnected()

        let started = ContinuousClock.now
        switch mode {
        case .latency:
            // Each publish is sent at its due time; confirms are awaited concurrently, so a slow
            // confirm never delays the next publish (an open-loop generator).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    let due = started + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate))
                    if due > ContinuousClock.now { try await Task.sleep(until: due) }
                    let message = Self.notice(index: index, users: users)
                    group.addTask { try await broker.publish(message, exchange: "", routingKey: queue) }
                }
                try await group.waitForAll()
            }
        case .throughput:
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    if index >= window { try await group.next() }
                    group.addTask { try await broker.publish(Self.notice(index: index, users: users), exchange: "", routingKey: queue) }
                }
                try await group.waitForAll()
            }
        case .connect:
            break
        }
        let published = ContinuousClock.now
        let waitUntil = ContinuousClock.now + .seconds(30)
        while results.received < count, ContinuousClock.now < waitUntil {
            try await Task.sleep(for: .milliseconds(5))
        }
        let finished = results.lastReceived ?? ContinuousClock.now
        await broker.shutdown()
        for session in sessions { session.cancel() }

        let latencies = results.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            return Double(latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)]) / 1e6
        }
        let seconds = Double((finished - started).components.attoseconds) / 1e18 + Double((finished - started).components.seconds)
        let publishSeconds = Double((published - started).components.attoseconds) / 1e18 + Double((published - started).components.seconds)
        print("mode=\(mode.rawValue) sessions=\(users) published=\(count) received=\(results.received) lost=\(count - results.received)")
        print(String(format: "latency_ms p50=%.3f p90=%.3f p99=%.3f max=%.3f", percentile(0.5), percentile(0.9), percentile(0.99), percentile(1.0)))
        print(String(format: "publish_rate=%.0f/s end_to_end_rate=%.0f/s", Double(count) / publishSeconds, Double(results.received) / seconds))
    }

    /// CONNECT → CONNECTED latency over `count` sequential sessions (the WebSocket handshake
    /// is not counted).
    func measureConnects(logger: Logger) async throws {
        var latencies: [Duration] = []
        let run = UInt32.random(in: 0...UInt32.max)
        for index in 0..<count {
            let token = self.token ?? "cold-\(run)-\(index)"
            let measured = Mutex<Duration?>(nil)
            try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 16), logger: logger) { inbound, outbound, _ in
                let frame = StompFrame(.connect, headers: ["accept-version": "1.2", "heart-beat": "0,0", "Authorization": "Bearer \(token)"])
                let sent = ContinuousClock.now
                try await outbound.write(.text(String(decoding: StompEncoder.encode(frame, version: .v1_2), as: UTF8.self)))
                for try await message in inbound.messages(maxSize: 1 << 16) {
                    guard case .text(let text) = message, text.hasPrefix("CONNECTED") else {
                        throw ValidationError("CONNECT refused: \(message)")
                    }
                    measured.withLock { $0 = ContinuousClock.now - sent }
                    break
                }
            }
            if let latency = measured.withLock({ $0 }) { latencies.append(latency) }
        }
        let sorted = latencies.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1000 }.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }
        print("mode=connect cache=\(token == nil ? "cold" : "warm") connects=\(sorted.count)")
        print(String(format: "latency_ms p50=%.3f p90=%.3f p99=%.3f max=%.3f", percentile(0.5), percentile(0.9), percentile(0.99), percentile(1.0)))
    }

    static func notice(index: Int, users: Int) -> AMQPMessage {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let sentAt = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        let body = #"{"userId":"\#(index % users + 1)","title":"bench \#(index)","sentAt":\#(sentAt)}"#
        return AMQPMessage(body: Array(body.utf8), properties: .persistentJSON)
    }

    static func session(url: String, user: Int, results: Results, ready: Counter, logger: Logger) async throws {
        try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 20), logger: logger) { inbound, outbound, _ in
            func send(_ frame: StompFrame) async throws {
                try await outbound.write(.text(String(decoding: StompEncoder.encode(frame, version: .v1_2), as: UTF8.self)))
            }
            try await send(StompFrame(.connect, headers: ["accept-version": "1.2", "heart-beat": "0,0", "Authorization": "Bearer bench-\(user)"]))
            var decoder = StompDecoder(version: .v1_2, limits: .init(maxFrameBytes: 1 << 20, maxHeaders: 100))
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                decoder.append(Array(text.utf8))
                while let output = try decoder.next() {
                    guard case .frame(let frame) = output else { continue }
                    switch frame.command {
                    case .connected:
                        try await send(StompFrame(.subscribe, headers: ["id": "0", "destination": "/notice/\(user)/remind", "receipt": "ready"]))
                    case .receipt:
                        ready.value.add(1, ordering: .relaxed)
                    case .message:
                        results.record(body: frame.body)
                    default:
                        throw ValidationError("session \(user): \(frame.command.rawValue) \(frame.headers["message"] ?? "")")
                    }
                }
            }
        }
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

/// Latencies (ns) of received notices, from the `sentAt` they carry.
final class Results: Sendable {
    private struct State {
        var latencies: [Int64] = []
        var last: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    func record(body: [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let receivedAt = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        let text = String(decoding: body, as: UTF8.self)
        guard let range = text.range(of: "\"sentAt\":") else { return }
        let digits = text[range.upperBound...].prefix { $0.isNumber }
        guard let sentAt = Int64(digits) else { return }
        let instant = ContinuousClock.now
        state.withLock {
            $0.latencies.append(receivedAt - sentAt)
            $0.last = instant
        }
    }

    var received: Int { state.withLock { $0.latencies.count } }
    var latencies: [Int64] { state.withLock { $0.latencies } }
    var lastReceived: ContinuousClock.Instant? { state.withLock { $0.last } }
}
