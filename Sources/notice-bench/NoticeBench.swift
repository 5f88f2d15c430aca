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
    @Flag(help: "notice: sessions also subscribe to /user/notice/events (counts after every notice)") var events = false
    @Option(help: "basic.qos prefetch of the bare consumer") var prefetch: UInt16 = 256
    @Option(help: "port of auth-stub") var port = 18181
    @Option(help: "seconds allowed for opening all sessions") var openTimeout = 600
    @Option(help: "sessions started per second at most while opening (0: no pace)") var openRate = 0
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
            events: events,
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
        try await client.openAll(users: 1...users, inFlight: inFlight, perSecond: openRate, timeout: .seconds(openTimeout))
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
}

/// How far the bare consumer got: messages consumed, and when the last batch arrived (CLOCK_REALTIME ns).
final class ConsumerProgress: Sendable {
    let consumed = Atomic<Int>(0)
    let last = Atomic<Int64>(0)
}
