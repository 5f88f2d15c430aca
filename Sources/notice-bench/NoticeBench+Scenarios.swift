import Foundation
import Logging
import RabbitMQ
import Synchronization

/// The measured scenarios: latency, throughput, broadcast, connects, the bare consumer.
extension NoticeBench {
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
        if events { Report.line("counts_messages", client.counters.events.load(ordering: .relaxed)) }
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
