import ArgumentParser
import Foundation
import Logging
import NoticeServer
import RabbitMQ

/// Publishes one notice record to the notice queue (for trying the service out).
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a notice record (JSON) to the notice queue and wait for the broker's confirm."
    )

    @Option(help: "AMQP URL (default: NOTICE_AMQP_URL or the local broker)")
    var amqpUrl = ProcessInfo.processInfo.environment[ConfigurationKey.amqpURL.name] ?? NoticeServiceConfiguration().amqp.url

    @Option(help: "queue (default: NOTICE_AMQP_QUEUE or notice.direct.queue)")
    var queue = ProcessInfo.processInfo.environment[ConfigurationKey.amqpQueue.name] ?? NoticeServiceConfiguration().queue

    @Argument(help: "the notice record, e.g. '{\"userId\":\"1\",\"title\":\"Hi\"}'")
    var json: String

    func run() async throws {
        var logger = Logger(label: "notice-service.publish")
        logger.logLevel = .error
        let connection = RabbitMQConnection(
            configuration: AMQPConfiguration(url: amqpUrl, connectionName: "notice-service publish"),
            topology: AMQPTopology(queues: [.init(name: queue)]),
            logger: logger
        )
        connection.start()
        let deadline = ContinuousClock.now + .seconds(10)
        while !connection.isConnected {
            guard ContinuousClock.now < deadline else {
                await connection.shutdown()
                throw ValidationError("no broker answered at the AMQP URL within 10 s (\(connection.lastError ?? "not connected"))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        do {
            try await connection.publish(AMQPMessage(body: Array(json.utf8), properties: .persistentJSON), exchange: "", routingKey: queue)
        } catch {
            await connection.shutdown()
            throw error
        }
        await connection.shutdown()
        print("published to \(queue)")
    }
}
