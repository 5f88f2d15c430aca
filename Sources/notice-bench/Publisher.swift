import Logging
import RabbitMQ
import Synchronization

/// Publishes notices with confirms over one or more `RabbitMQConnection`s (round-robin),
/// either open-loop at a fixed rate or as fast as a window of unconfirmed messages allows.
final class Publisher: Sendable {
    /// Where a notice goes and what it says; `sentAt` is stamped when it is built.
    struct Route: Sendable {
        var exchange: String
        var routingKey: @Sendable (_ index: Int) -> String
        var body: @Sendable (_ index: Int, _ sentAt: Int64) -> String
    }

    let connections: [RabbitMQConnection]
    let route: Route
    private let inFlight = Atomic<Int>(0)
    private let confirmed = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let firstFailure = Mutex<String?>(nil)

    init(url: String, connections: Int, topology: AMQPTopology, route: Route, logger: Logger) {
        self.connections = (0..<max(1, connections)).map { index in
            RabbitMQConnection(
                configuration: AMQPConfiguration(url: url, connectionName: "notice-bench-publisher-\(index)"),
                topology: index == 0 ? topology : AMQPTopology(),
                logger: logger
            )
        }
        self.route = route
    }

    func start() async {
        for connection in connections {
            connection.start()
            await connection.waitUntilConnected()
        }
    }

    /// Sends notice `index` now (without waiting for its confirm).
    func publish(_ index: Int) {
        inFlight.add(1, ordering: .relaxed)
        let message = AMQPMessage(body: Array(route.body(index, realtimeNanos()).utf8), properties: .persistentJSON)
        connections[index % connections.count].publish(message, exchange: route.exchange, routingKey: route.routingKey(index)) { result in
            self.inFlight.subtract(1, ordering: .relaxed)
            switch result {
            case .success: self.confirmed.add(1, ordering: .relaxed)
            case .failure(let error):
                self.failures.add(1, ordering: .relaxed)
                self.firstFailure.withLock { if $0 == nil { $0 = "\(error)" } }
            }
        }
    }

    /// Open loop: notice `i` is due at `i / rate` s after the start; whatever is due is sent
    /// every millisecond, so a slow confirm never delays the next publish.
    func publish(count: Int, rate: Int, from first: Int = 0) async throws {
        let started = ContinuousClock.now
        var next = 0
        while next < count {
            let elapsed = ContinuousClock.now - started
            let due = min(count, Int(elapsed.seconds * Double(rate)) + 1)
            while next < due {
                publish(first + next)
                next += 1
            }
            if next < count { try await Task.sleep(for: .milliseconds(1)) }
        }
    }

    /// Closed loop: at most `window` unconfirmed notices at any time.
    func publish(count: Int, window: Int, from first: Int = 0) async throws {
        var next = 0
        while next < count {
            while next < count, inFlight.load(ordering: .relaxed) < window {
                publish(first + next)
                next += 1
            }
            if next < count { try await Task.sleep(for: .microseconds(200)) }
        }
    }

    /// Waits (bounded) until every notice sent so far is confirmed or refused.
    func drain(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while inFlight.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    var confirmedCount: Int { confirmed.load(ordering: .relaxed) }
    var failureCount: Int { failures.load(ordering: .relaxed) }
    var failure: String? { firstFailure.withLock { $0 } }

    func shutdown() async {
        for connection in connections { await connection.shutdown() }
    }
}

extension Duration {
    /// This duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
