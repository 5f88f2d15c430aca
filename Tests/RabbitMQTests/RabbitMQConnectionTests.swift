import Foundation
import Logging
import Testing

@testable import RabbitMQ

/// Against the real broker that scripts/test starts.
@Suite(.serialized) struct RabbitMQConnectionTests {
    static let url = ProcessInfo.processInfo.environment["NOTICE_TEST_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"

    func connection(consume queue: String?, declare: [String], prefetch: UInt16 = 256) -> RabbitMQConnection {
        var logger = Logger(label: "test.amqp")
        logger.logLevel = .warning
        return RabbitMQConnection(
            configuration: AMQPConfiguration(url: Self.url, prefetch: prefetch, connectionName: "rabbitmq-tests"),
            topology: AMQPTopology(queues: declare.map { .init(name: $0, durable: false, exclusive: false, autoDelete: false) }, consume: queue),
            logger: logger
        )
    }

    func take(_ count: Int, from connection: RabbitMQConnection, timeout: Duration = .seconds(30)) async throws -> [AMQPDelivery] {
        try await withThrowingTaskGroup(of: [AMQPDelivery].self) { group in
            group.addTask {
                var received: [AMQPDelivery] = []
                for await batch in connection.deliveries {
                    received += batch
                    if received.count >= count { break }
                }
                return received
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw CancellationError()
            }
            let result = try await group.next()!
            group.cancelAll()
            return result
        }
    }

    @Test func publishesWithConfirmAndConsumesPropertiesUnchanged() async throws {
        let queue = "test.amqp.\(UUID().uuidString)"
        let publisher = connection(consume: nil, declare: [queue])
        publisher.start()
        await publisher.waitUntilConnected()
        #expect(publisher.isConnected)
        var headers = AMQPTable()
        headers["x-text"] = .text("héllo")
        headers["x-int"] = .int64(-5)
        headers["x-bool"] = .bool(true)
        headers["x-nested"] = .table(AMQPTable([.init(key: "a", value: .array([.int32(1), .text("b")]))]))
        let properties = AMQPProperties(
            contentType: "application/json",
            headers: headers,
            deliveryMode: 2,
            messageId: "m-1",
            timestamp: 1_700_000_000
        )
        for index in 0..<3 {
            try await publisher.publish(AMQPMessage(body: Array("{\"n\":\(index)}".utf8), properties: properties), exchange: "", routingKey: queue)
        }

        let consumer = connection(consume: queue, declare: [queue])
        consumer.start()
        let deliveries = try await take(3, from: consumer)
        #expect(deliveries.map { String(decoding: $0.message.body, as: UTF8.self) } == ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"])
        #expect(deliveries[0].message.properties == properties)
        #expect(deliveries[0].routingKey == queue)
        consumer.settle(deliveries.map(\.tag))
        await consumer.shutdown()
        await publisher.shutdown()
    }

    /// Waits for `body` at most `timeout`: a command dropped by the worker would wait for ever.
    func within<T: Sendable>(_ timeout: Duration = .seconds(20), _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw CancellationError()
            }
            let result = try await group.next()!
            group.cancelAll()
            return result
        }
    }

    /// A command that loses the connection (the broker refuses a bind) does not take the
    /// commands queued behind it with it: each is answered, and the refused binding is not
    /// declared again on reconnect (the connection stays up after it).
    @Test func aFailingCommandAnswersEveryCommandBehindIt() async throws {
        let queue = "test.amqp.\(UUID().uuidString)"
        let publisher = connection(consume: nil, declare: [queue])
        publisher.start()
        await publisher.waitUntilConnected()
        let published = AsyncStream.makeStream(of: Bool.self)
        let bound = AsyncStream.makeStream(of: Bool.self)
        let badBind = AsyncStream.makeStream(of: Bool.self)
        let refusedBinding = AMQPTopology.Binding(queue: "test.amqp.no-such-queue.\(UUID().uuidString)", exchange: "amq.direct", routingKey: "x")
        let goodBinding = AMQPTopology.Binding(queue: queue, exchange: "amq.direct", routingKey: "y")
        // Posted at once, so the worker takes all three in one batch.
        let (bad, good) = await (
            withCheckedContinuation { (outer: CheckedContinuation<CheckedContinuation<Void, any Error>, Never>) in
                Task {
                    do {
                        try await withCheckedThrowingContinuation { outer.resume(returning: $0) }
                        badBind.continuation.yield(true)
                    } catch { badBind.continuation.yield(false) }
                }
            },
            withCheckedContinuation { (outer: CheckedContinuation<CheckedContinuation<Void, any Error>, Never>) in
                Task {
                    do {
                        try await withCheckedThrowingContinuation { outer.resume(returning: $0) }
                        bound.continuation.yield(true)
                    } catch { bound.continuation.yield(false) }
                }
            }
        )
        publisher.mailbox.post([
            .bind(refusedBinding, unbind: false, bad),
            .publish(AMQPMessage(body: Array("behind".utf8)), exchange: "", routingKey: queue) {
                published.continuation.yield((try? $0.get()) != nil)
            },
            .bind(goodBinding, unbind: false, good),
        ])
        #expect(try await within { await badBind.stream.first { _ in true } } == false, "the broker refuses a bind to a missing queue")
        // The publish behind it is answered (it may have gone out before the connection closed).
        let answered: Bool? = try await within { await published.stream.first { _ in true } }
        #expect(answered != nil)
        #expect(try await within { await bound.stream.first { _ in true } } == true, "kept for the next connect")
        // Reconnected with the good binding only: publishes are confirmed again, and stay so.
        try await within {
            while true {
                await publisher.waitUntilConnected()
                do {
                    try await publisher.publish(AMQPMessage(body: Array("after".utf8)), exchange: "", routingKey: queue)
                    return
                } catch {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        try await publisher.publish(AMQPMessage(body: Array("via binding".utf8)), exchange: "amq.direct", routingKey: "y")
        #expect(publisher.isConnected)
        await publisher.shutdown()
    }

    /// Names over AMQP's 255-byte short string fail their own command with a clear error and
    /// leave the connection (and the commands behind them) alone.
    @Test func namesOverAShortStringFailAloneWithoutDroppingTheConnection() async throws {
        let queue = "test.amqp.\(UUID().uuidString)"
        let publisher = connection(consume: queue, declare: [queue])
        publisher.start()
        await publisher.waitUntilConnected()
        let long = String(repeating: "é", count: 128)  // 128 characters, 256 bytes
        await #expect(throws: AMQPError.tooLong("routing key")) {
            try await publisher.publish(AMQPMessage(body: [1]), exchange: "", routingKey: long)
        }
        await #expect(throws: AMQPError.tooLong("routing key")) {
            try await publisher.bind(queue: queue, exchange: "amq.topic", routingKey: "user." + long)
        }
        try await publisher.publish(AMQPMessage(body: Array("fine".utf8)), exchange: "", routingKey: queue)
        let deliveries = try await take(1, from: publisher)
        #expect(deliveries.map { String(decoding: $0.message.body, as: UTF8.self) } == ["fine"])
        publisher.settle(deliveries.map(\.tag))
        #expect(publisher.isConnected)
        await publisher.shutdown()
    }

    @Test func unsettledDeliveriesAreRedeliveredAndSettledOnesAreNot() async throws {
        let queue = "test.amqp.\(UUID().uuidString)"
        let publisher = connection(consume: nil, declare: [queue])
        publisher.start()
        await publisher.waitUntilConnected()
        for index in 1...4 {
            try await publisher.publish(AMQPMessage(body: [UInt8(index)]), exchange: "", routingKey: queue)
        }
        let first = connection(consume: queue, declare: [queue])
        first.start()
        let deliveries = try await take(4, from: first)
        // Settle 1, 2 and 4: only 1 and 2 may be acked (multiple), 3 blocks 4.
        first.settle([deliveries[0].tag, deliveries[1].tag, deliveries[3].tag])
        await first.shutdown()

        let second = connection(consume: queue, declare: [queue])
        second.start()
        let again = try await take(2, from: second)
        #expect(again.map(\.message.body) == [[3], [4]])
        #expect(again.allSatisfy { $0.redelivered })
        second.settle(again.map(\.tag))
        await second.shutdown()
        await publisher.shutdown()
    }

    @Test func unreachableBrokerIsReportedNotFatal() async throws {
        var logger = Logger(label: "test.amqp")
        logger.logLevel = .critical
        let connection = RabbitMQConnection(
            configuration: AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:1/", minBackoff: .milliseconds(20), maxBackoff: .milliseconds(50)),
            topology: AMQPTopology(),
            logger: logger
        )
        connection.start()
        // Its first attempt fails at once (nothing listens); wait until it says so.
        let deadline = ContinuousClock.now + .seconds(30)
        while connection.lastError == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(!connection.isConnected)
        #expect(connection.lastError != nil)
        await #expect(throws: AMQPError.self) {
            try await connection.publish(AMQPMessage(body: [1]), exchange: "", routingKey: "x")
        }
        await connection.shutdown()
    }
}

@Suite struct RabbitMQBindingTests {
    @Test func bindAndUnbindRouteThroughAnExchange() async throws {
        let queue = "test.amqp.\(UUID().uuidString)"
        var logger = Logger(label: "test.amqp")
        logger.logLevel = .warning
        let connection = RabbitMQConnection(
            configuration: AMQPConfiguration(url: RabbitMQConnectionTests.url, connectionName: "rabbitmq-tests"),
            topology: AMQPTopology(
                queues: [.init(name: queue, durable: false, exclusive: false, autoDelete: false)],
                exchanges: [.init(name: "test.amqp.topic", type: "topic", durable: false)],
                consume: queue
            ),
            logger: logger
        )
        connection.start()
        await connection.waitUntilConnected()
        try await connection.bind(queue: queue, exchange: "test.amqp.topic", routingKey: "user.7")
        try await connection.publish(AMQPMessage(body: [1]), exchange: "test.amqp.topic", routingKey: "user.7")
        try await connection.unbind(queue: queue, exchange: "test.amqp.topic", routingKey: "user.7")
        try await connection.publish(AMQPMessage(body: [2]), exchange: "test.amqp.topic", routingKey: "user.7")
        try await connection.bind(queue: queue, exchange: "test.amqp.topic", routingKey: "broadcast")
        try await connection.publish(AMQPMessage(body: [3]), exchange: "test.amqp.topic", routingKey: "broadcast")

        var bodies: [[UInt8]] = []
        for await batch in connection.deliveries {
            bodies += batch.map { $0.message.body }
            connection.settle(batch.map(\.tag))
            if bodies.count >= 2 { break }
        }
        #expect(bodies == [[1], [3]])
        await connection.shutdown()
    }
}
