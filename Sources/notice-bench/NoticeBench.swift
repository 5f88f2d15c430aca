import ArgumentParser
import Foundation
import Logging
import RabbitMQ
import Synchronization

/// Measures notice-service (or RabbitMQ Web-STOMP, side by side) from the outside: many
/// STOMP-over-WebSocket sessions on a small SwiftNIO event-loop group, notices published to
/// the real broker, and `key=value` lines on stdout. scripts/bench runs it.
@main
struct NoticeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notice-bench",
        abstract: "Load generator for notice-service and RabbitMQ Web-STOMP.",
        discussion: """
            Modes (every line of output is key=value):
            sessions: open --users sessions; RSS of --pid before, once all are subscribed, after --settle s.
            latency: --users sessions; --count notices at --rate/s, users round-robin; publish→MESSAGE latency, lost.
            throughput: --users sessions; --count notices, --window unconfirmed over --publishers connections; \
            end-to-end rate (first publish → last MESSAGE) and the publish rate achieved.
            broadcast: --users sessions; --repeat broadcasts, one at a time; time until the last session has each.
            connect: --count sessions, --concurrency at once, each closed at CONNECTED; connects/s and latency; \
            one token for all (warm introspection cache), or --cold for a token each.
            bare: no sessions; a RabbitMQConnection consuming --queue and acking each batch at once (multiple), \
            fed by the same publisher as throughput: the broker's ceiling.
            auth-stub: RFC 7662 introspection on 127.0.0.1:--port (token bench-<run>-<user> → sub <user>).

            --target notice: the service's ws URL, tokens bench-<run>-<user>, /notice/<user>/remind, notices to \
            --queue by the default exchange. --target webstomp: RabbitMQ Web-STOMP (guest/guest), \
            /exchange/notice.deliver/user.<user>, published to the topic exchange notice.deliver with routing key \
            user.<user> (broadcasts: key broadcast).
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case sessions, latency, throughput, broadcast, connect, bare
        case authStub = "auth-stub"
    }

    enum TargetOption: String, ExpressibleByArgument, CaseIterable {
        case notice, webstomp
    }

    @Argument(help: "sessions | latency | throughput | broadcast | connect | bare | auth-stub") var mode: Mode
    @Option(help: "notice | webstomp") var target: TargetOption = .notice
    @Option(help: "WebSocket URL (Web-STOMP: ws://127.0.0.1:15674/ws)") var url = "ws://127.0.0.1:8080/ws"
    @Option(help: "broker URL") var amqpUrl = "amqp://guest:guest@127.0.0.1:5672/"
    @Option(help: "the service's notice queue (bare: the queue to declare and consume)") var queue = "notice.direct.queue"
    @Option(help: "sessions, users 1...N") var users = 100
    @Option(help: "notices to publish (connect: sessions to open)") var count = 1000
    @Option(help: "notices per second (latency)") var rate = 1000
    @Option(help: "unconfirmed publishes at once (throughput, bare)") var window = 1024
    @Option(help: "publisher connections") var publishers = 2
    @Option(help: "event-loop threads of the sessions") var threads = 2
    @Option(help: "handshakes in flight while opening sessions") var inFlight = 300
    @Option(help: "source addresses 127.0.0.2... to rotate over") var sources = 8
    @Option(help: "the <run> of tokens bench-<run>-<user>") var run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    @Option(help: "process whose RSS and CPU are reported (the service, or beam.smp)") var pid: Int32?
    @Option(help: "the broker (beam.smp), whose CPU is reported too when it is not --pid") var brokerPid: Int32?
    @Option(help: "seconds to wait after all sessions are ready (sessions)") var settle = 10
    @Option(help: "broadcasts to send (broadcast)") var `repeat` = 5
    @Option(help: "CONNECTs in flight (connect)") var concurrency = 16
    @Flag(help: "connect: a new token per CONNECT (cold cache) instead of one token") var cold = false
    @Option(help: "basic.qos prefetch of the bare consumer") var prefetch: UInt16 = 256
    @Option(help: "port of auth-stub") var port = 18181
    @Option(help: "seconds allowed for opening all sessions") var openTimeout = 600
    @Option(help: "write latencies (ms, one per line) to this file") var latenciesFile: String?
    @Option(help: "write `received_ms,latency_ms` per MESSAGE, in order of arrival, to this file (where the tail comes from)")
    var timelineFile: String?

    func run() async throws {
        var logger = Logger(label: "notice-bench")
        logger.logLevel = .error
        switch mode {
        case .authStub:
            try await AuthStub.run(port: port, threads: threads)
        case .bare:
            try await bare(logger: logger)
        case .connect:
            try await connects()
        case .sessions, .latency, .throughput, .broadcast:
            try await withSessions(logger: logger)
        }
    }

    var plannedTarget: SessionPlan.Target { target == .notice ? .notice : .webstomp }

    func makePlan(subscribes: Bool = true, fixedToken: String? = nil) throws -> SessionPlan {
        try SessionPlan(
            url: url,
            target: plannedTarget,
            run: run,
            fixedToken: fixedToken,
            subscribes: subscribes,
            broadcast: mode == .broadcast,
            sourceAddresses: sources
        )
    }

    /// Opens `--users` sessions, reports how that went, and runs the mode's measurement on them.
    func withSessions(logger: Logger) async throws {
        let client = SessionClient(plan: try makePlan(), threads: threads)
        let before = pid.map { ProcessSample(pid: $0) }
        let benchBefore = ProcessSample.current
        let cpu = CPUWindow(pid: pid, brokerPid: brokerPid)
        let opened = ContinuousClock.now
        try await client.openAll(users: 1...users, inFlight: inFlight, timeout: .seconds(openTimeout))
        let openSeconds = (ContinuousClock.now - opened).seconds
        let ready = client.counters.ready.load(ordering: .relaxed)
        Report.line("mode", mode.rawValue)
        Report.line("target", target.rawValue)
        Report.line("sessions", users)
        Report.line("ready", ready)
        Report.line("failed", users - ready)
        Report.line("open_s", openSeconds)
        Report.line("open_per_s", Double(ready) / openSeconds, digits: 0)
        if let error = try await client.firstError() { Report.line("first_error", error.replacingOccurrences(of: "\n", with: " ")) }
        if mode == .sessions {
            cpu.report()
            try await sessionMemory(client: client, before: before, benchBefore: benchBefore, ready: ready)
        } else if ready < users {
            await client.shutdown()
            throw BenchError("only \(ready) of \(users) sessions subscribed")
        } else {
            let publisher = makePublisher(logger: logger)
            await publisher.start()
            switch mode {
            case .latency: try await latency(client: client, publisher: publisher)
            case .throughput: try await throughput(client: client, publisher: publisher)
            case .broadcast: try await broadcast(client: client, publisher: publisher)
            default: break
            }
            await publisher.shutdown()
            // Sessions the server closed during the measurement (their notices count as lost).
            Report.line("closed_early", client.counters.closed.load(ordering: .relaxed))
        }
        try await client.closeAll()
        await client.shutdown()
    }

    func sessionMemory(client: SessionClient, before: ProcessSample?, benchBefore: ProcessSample, ready: Int) async throws {
        let perSession = { (rss: Int) in Double(rss - (before?.rssKiB ?? 0)) / Double(max(1, ready)) }
        let after = pid.map { ProcessSample(pid: $0) }
        let benchAfter = ProcessSample.current
        try await Task.sleep(for: .seconds(settle))
        let settled = pid.map { ProcessSample(pid: $0) }
        if let before, let after, let settled {
            Report.line("rss_before_kib", before.rssKiB)
            Report.line("rss_ready_kib", after.rssKiB)
            Report.line("rss_settled_kib", settled.rssKiB)
            Report.line("rss_per_session_ready_kib", perSession(after.rssKiB), digits: 2)
            Report.line("rss_per_session_kib", perSession(settled.rssKiB), digits: 2)
        }
        Report.line("bench_rss_per_session_kib", Double(benchAfter.rssKiB - benchBefore.rssKiB) / Double(max(1, ready)), digits: 2)
        Report.line("still_open", client.counters.ready.load(ordering: .relaxed) - client.counters.closed.load(ordering: .relaxed))
        try await client.closeAll()
        if let pid {
            try await Task.sleep(for: .seconds(2))
            Report.line("rss_closed_kib", ProcessSample(pid: pid).rssKiB)
        }
    }

    func makePublisher(logger: Logger) -> Publisher {
        switch (plannedTarget, mode) {
        case (.notice, .broadcast):
            return Publisher(
                url: amqpUrl,
                connections: 1,
                topology: AMQPTopology(),
                route: .init(exchange: "", routingKey: { [queue] _ in queue }) { index, sentAt in
                    #"{"broadcast":true,"title":"bench broadcast \#(index)","sentAt":\#(sentAt)}"#
                },
                logger: logger
            )
        case (.notice, _), (.webstomp, .bare):
            return Publisher(
                url: amqpUrl,
                connections: publishers,
                topology: AMQPTopology(),
                route: .init(exchange: "", routingKey: { [queue] _ in queue }) { [users] index, sentAt in
                    #"{"userId":"\#(index % users + 1)","title":"bench \#(index)","sentAt":\#(sentAt)}"#
                },
                logger: logger
            )
        case (.webstomp, .broadcast):
            return Publisher(
                url: amqpUrl,
                connections: 1,
                topology: Self.webStompTopology,
                route: .init(exchange: SessionPlan.webStompExchange, routingKey: { _ in "broadcast" }) { index, sentAt in
                    #"{"broadcast":true,"title":"bench broadcast \#(index)","sentAt":\#(sentAt)}"#
                },
                logger: logger
            )
        case (.webstomp, _):
            return Publisher(
                url: amqpUrl,
                connections: publishers,
                topology: Self.webStompTopology,
                route: .init(exchange: SessionPlan.webStompExchange, routingKey: { [users] index in "user.\(index % users + 1)" }) {
                    [users] index, sentAt in
                    #"{"userId":"\#(index % users + 1)","title":"bench \#(index)","sentAt":\#(sentAt)}"#
                },
                logger: logger
            )
        }
    }

    static let webStompTopology = AMQPTopology(exchanges: [.init(name: SessionPlan.webStompExchange, type: "topic")])

    /// Waits (bounded) until `target` MESSAGEs have arrived in all.
    func awaitReceived(_ client: SessionClient, _ target: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while client.counters.received.load(ordering: .relaxed) < target, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func latencies(_ client: SessionClient) async throws -> [Int64] {
        try await client.collect { $0.latencies }.flatMap { $0 }
    }

    func latency(client: SessionClient, publisher: Publisher) async throws {
        let cpu = CPUWindow(pid: pid, brokerPid: brokerPid)
        let started = ContinuousClock.now
        try await publisher.publish(count: count, rate: rate)
        let publishSeconds = (ContinuousClock.now - started).seconds
        try await publisher.drain()
        try await awaitReceived(client, count, timeout: .seconds(30))
        cpu.report(notices: client.counters.received.load(ordering: .relaxed))
        try await reportDelivery(client: client, publisher: publisher, publishSeconds: publishSeconds)
    }

    func throughput(client: SessionClient, publisher: Publisher) async throws {
        let cpu = CPUWindow(pid: pid, brokerPid: brokerPid)
        let firstPublish = realtimeNanos()
        let started = ContinuousClock.now
        try await publisher.publish(count: count, window: window)
        try await publisher.drain()
        let publishSeconds = (ContinuousClock.now - started).seconds
        try await awaitReceived(client, count, timeout: .seconds(Int64(count / 500 + 60)))
        cpu.report(notices: client.counters.received.load(ordering: .relaxed))
        let last = try await client.collect { $0.lastReceived }.max() ?? firstPublish
        let received = client.counters.received.load(ordering: .relaxed)
        Report.line("end_to_end_per_s", Double(received) / (Double(last - firstPublish) / 1e9), digits: 0)
        try await reportDelivery(client: client, publisher: publisher, publishSeconds: publishSeconds)
    }

    func reportDelivery(client: SessionClient, publisher: Publisher, publishSeconds: Double) async throws {
        let received = client.counters.received.load(ordering: .relaxed)
        let samples = try await latencies(client)
        Report.line("published", publisher.confirmedCount)
        Report.line("publish_failures", publisher.failureCount)
        if let failure = publisher.failure { Report.line("publish_error", failure) }
        Report.line("publish_per_s", Double(publisher.confirmedCount) / publishSeconds, digits: 0)
        Report.line("received", received)
        Report.line("lost", max(0, count - received))
        Report.percentiles("latency", samples)
        if let latenciesFile { try Report.write(samples, to: latenciesFile) }
        if let timelineFile {
            let timeline = try await client.collect { Array(zip($0.receivedAt, $0.latencies)) }.flatMap { $0 }
            try Report.writeTimeline(timeline, to: timelineFile)
        }
    }

    func broadcast(client: SessionClient, publisher: Publisher) async throws {
        var toLast: [Int64] = []
        var medians: [Int64] = []
        var missing = 0
        var spent: CPUSpent?
        for index in 0..<self.repeat {
            _ = try await client.collect {
                $0.latencies.removeAll(keepingCapacity: true)
                $0.receivedAt.removeAll(keepingCapacity: true)
            }
            let before = client.counters.received.load(ordering: .relaxed)
            let cpu = CPUWindow(pid: pid, brokerPid: brokerPid)
            let sentAt = realtimeNanos()
            publisher.publish(index)
            try await awaitReceived(client, before + users, timeout: .seconds(60))
            spent = spent.map { $0 + cpu.spent() } ?? cpu.spent()
            missing += max(0, before + users - client.counters.received.load(ordering: .relaxed))
            let samples = try await latencies(client).sorted()
            let last = try await client.collect { $0.lastReceived }.max() ?? sentAt
            toLast.append(last - sentAt)
            medians.append(Int64(Report.percentile(samples, 0.5)))
            Report.line("broadcast_\(index)_to_last_ms", Double(last - sentAt) / 1e6)
            try await Task.sleep(for: .seconds(1))
        }
        // From each publish to the last session reached, per session reached.
        spent?.report(notices: self.repeat * users - missing)
        Report.line("broadcasts", self.repeat)
        Report.line("missing", missing)
        Report.line("to_last_median_ms", Report.percentile(toLast.sorted(), 0.5) / 1e6)
        Report.line("per_session_median_ms", Report.percentile(medians.sorted(), 0.5) / 1e6)
    }

    /// CONNECT throughput and latency: `--count` sessions, `--concurrency` at once, each
    /// closed as soon as CONNECTED arrives.
    func connects() async throws {
        let warmToken = "bench-\(run)-1"
        let client = SessionClient(plan: try makePlan(subscribes: false, fixedToken: cold ? nil : warmToken), threads: threads)
        // One CONNECT first, so the warm token is in the service's cache.
        try await client.openAll(users: [1], inFlight: 1, timeout: .seconds(30))
        guard client.counters.ready.load(ordering: .relaxed) == 1 else {
            let reason = try await client.firstError() ?? "?"
            throw BenchError("the first CONNECT failed: \(reason)")
        }
        _ = try await client.collect {
            $0.connectLatencies.removeAll()
            $0.openLatencies.removeAll()
        }
        let cpu = CPUWindow(pid: pid, brokerPid: brokerPid)
        let started = ContinuousClock.now
        try await client.openAll(users: 2...(count + 1), inFlight: concurrency, timeout: .seconds(openTimeout))
        let seconds = (ContinuousClock.now - started).seconds
        let ready = client.counters.ready.load(ordering: .relaxed) - 1
        Report.line("mode", "connect")
        Report.line("target", target.rawValue)
        if plannedTarget == .notice { Report.line("cache", cold ? "cold" : "warm") }
        Report.line("concurrency", concurrency)
        Report.line("connects", ready)
        Report.line("failed", count - ready)
        Report.line("connects_per_s", Double(ready) / seconds, digits: 0)
        cpu.report()
        if let error = try await client.firstError() { Report.line("first_error", error.replacingOccurrences(of: "\n", with: " ")) }
        Report.percentiles("connect", try await client.collect { $0.connectLatencies }.flatMap { $0 })
        Report.percentiles("open", try await client.collect { $0.openLatencies }.flatMap { $0 })
        try await client.closeAll()
        await client.shutdown()
    }

    /// The broker's ceiling: the same publisher, and a consumer that only acks (multiple).
    func bare(logger: Logger) async throws {
        let consumer = RabbitMQConnection(
            configuration: AMQPConfiguration(url: amqpUrl, prefetch: prefetch, connectionName: "notice-bench-bare"),
            topology: AMQPTopology(queues: [.init(name: queue)], consume: queue),
            logger: logger
        )
        consumer.start()
        await consumer.waitUntilConnected()
        let progress = ConsumerProgress()
        let consuming = Task {
            for await batch in consumer.deliveries {
                consumer.settle(batch.map(\.tag))
                progress.consumed.add(batch.count, ordering: .relaxed)
                progress.last.store(realtimeNanos(), ordering: .relaxed)
            }
        }
        let publisher = makePublisher(logger: logger)
        await publisher.start()
        let cpu = CPUWindow(pid: pid, brokerPid: brokerPid)
        let firstPublish = realtimeNanos()
        let started = ContinuousClock.now
        try await publisher.publish(count: count, window: window)
        try await publisher.drain()
        let publishSeconds = (ContinuousClock.now - started).seconds
        let deadline = ContinuousClock.now + .seconds(Int64(count / 1000 + 60))
        while progress.consumed.load(ordering: .relaxed) < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        cpu.report(notices: progress.consumed.load(ordering: .relaxed))
        let received = progress.consumed.load(ordering: .relaxed)
        Report.line("mode", "bare")
        Report.line("published", publisher.confirmedCount)
        Report.line("publish_per_s", Double(publisher.confirmedCount) / publishSeconds, digits: 0)
        Report.line("consumed", received)
        Report.line("lost", max(0, count - received))
        Report.line("consumed_per_s", Double(received) / (Double(progress.last.load(ordering: .relaxed) - firstPublish) / 1e9), digits: 0)
        await publisher.shutdown()
        await consumer.shutdown()
        consuming.cancel()
    }
}

/// How far the bare consumer got: messages consumed, and when the last batch arrived (CLOCK_REALTIME ns).
final class ConsumerProgress: Sendable {
    let consumed = Atomic<Int>(0)
    let last = Atomic<Int64>(0)
}
