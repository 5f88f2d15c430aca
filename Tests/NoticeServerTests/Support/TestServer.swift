import Foundation
import Hummingbird
import Logging
import NoticeCore
import NoticeServer
import NoticeStore
import NoticeTesting
import RabbitMQ
import STOMP
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The real service on a free port, against the real broker (scripts/test starts it)
/// and a real SQLite file; each instance gets its own queue unless told otherwise.
struct TestServer {
    static let amqpURL = ProcessInfo.processInfo.environment["NOTICE_TEST_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
    static let devTokens = ["alice": "1", "bob": "2", "carol": "3"]
    /// The origin swift-websocket's client sends (scheme and host, no port).
    static let clientOrigin = "ws://127.0.0.1"

    let port: Int
    let configuration: NoticeServiceConfiguration
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// The kinds of store a test can run the service on.
    enum Store: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case sqlite
        /// A fresh database per server (`NOTICE_TEST_POSTGRES_URL`), dropped by ``stop()``.
        case postgres
        var testDescription: String { rawValue }
    }

    /// A configuration for a fresh queue and SQLite database; tweak and pass to ``start(_:logHandler:)``.
    static func configuration(queue: String = freshQueueName(), databasePath: String? = nil) -> NoticeServiceConfiguration {
        var configuration = NoticeServiceConfiguration()
        configuration.httpPort = 0
        configuration.nodeId = "test-\(UUID().uuidString.prefix(8))"
        configuration.amqp = AMQPConfiguration(url: amqpURL, connectionName: "notice-service \(configuration.nodeId)")
        configuration.queue = queue
        configuration.exchange = "\(queue).direct"
        // Servers on PostgreSQL relay across nodes: each test server gets a cluster of its own.
        configuration.deliverExchange = "\(queue).deliver"
        configuration.eventsExchange = "\(queue).events"
        configuration.database = .sqlite(path: databasePath ?? freshDatabasePath())
        configuration.devTokens = devTokens
        configuration.logLevel = .warning
        configuration.allowedOrigins = .list([clientOrigin])
        return configuration
    }

    /// A configuration for a fresh queue and a fresh database of the given kind.
    static func configuration(store: Store) async throws -> NoticeServiceConfiguration {
        var configuration = configuration()
        if store == .postgres { configuration.database = try await TestPostgres.createDatabase().configuration }
        return configuration
    }

    /// Two nodes of one cluster: a fresh store of the given kind shared by both, one deliver
    /// exchange of their own, relaying on, each node with its own queue (so that whatever the
    /// second's sessions receive of what the first consumes crossed over).
    static func clusterConfigurations(
        store: Store = .sqlite
    ) async throws -> (first: NoticeServiceConfiguration, second: NoticeServiceConfiguration) {
        let exchange = "test.deliver.\(UUID().uuidString)"
        var first = try await configuration(store: store)
        var second = configuration()
        second.database = first.database
        for index in 0..<2 {
            var node = index == 0 ? first : second
            node.clusterDeliveryMode = .on
            node.deliverExchange = exchange
            if index == 0 { first = node } else { second = node }
        }
        return (first, second)
    }

    /// The same as ``configuration(queue:databasePath:)`` as environment variables, for a
    /// service started as a process of its own.
    static func settings(queue: String = freshQueueName(), databasePath: String? = nil) -> [String: String] {
        [
            "NOTICE_HTTP_PORT": "0",
            "NOTICE_AMQP_URL": amqpURL,
            "NOTICE_AMQP_QUEUE": queue,
            "NOTICE_AMQP_EXCHANGE": "\(queue).direct",
            "NOTICE_AMQP_DELIVER_EXCHANGE": "\(queue).deliver",
            "NOTICE_AMQP_EVENTS_EXCHANGE": "\(queue).events",
            "NOTICE_DB_URL": "sqlite:\(databasePath ?? freshDatabasePath())",
            "NOTICE_DEV_TOKENS": devTokens.map { "\($0.key):\($0.value)" }.sorted().joined(separator: ","),
            "NOTICE_NODE_ID": "test-\(UUID().uuidString.prefix(8))",
            "NOTICE_LOG_LEVEL": "warning",
            "NOTICE_ALLOWED_ORIGINS": clientOrigin,
        ]
    }

    static func freshQueueName() -> String { "test.\(UUID().uuidString)" }

    static func freshDatabasePath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("notice-test-\(UUID().uuidString)/notice.sqlite").path
    }

    static func start(_ configuration: NoticeServiceConfiguration = configuration(), logHandler: (any LogHandler)? = nil) async throws -> TestServer {
        var logger = logHandler.map { handler in Logger(label: "test.server") { _ in handler } } ?? Logger(label: "test.server")
        logger.logLevel = configuration.logLevel
        let ports = TestQueue<Int>()
        let group = try await buildService(configuration, logger: logger) { port in ports.push(port) }
        let task = Task { try await group.run() }
        guard let port = await ports.next(timeout: .seconds(30)) else {
            task.cancel()
            throw TestFailure("server did not start")
        }
        let server = TestServer(port: port, configuration: configuration, group: group, task: task)
        // Ready means the consumer is attached: publishing after this is never lost in a race.
        let deadline = ContinuousClock.now + .seconds(30)
        while try await server.get("/health/ready").status != 200 {
            guard ContinuousClock.now < deadline else { throw TestFailure("server not ready") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return server
    }

    /// The server's SQLite file (`nil` on PostgreSQL).
    var databasePath: String? {
        if case .sqlite(let path) = configuration.database { path } else { nil }
    }

    /// A connection of the test's own to the server's store (close it).
    func openStore() throws -> any NoticeStore {
        switch configuration.database {
        case .sqlite(let path): try SQLiteNoticeStore(path: path)
        case .postgres(let postgres): RunningPostgresStore(configuration: postgres)
        }
    }

    /// Rows in the server's store.
    func storedCount() async throws -> Int {
        let store = try openStore()
        do {
            let count = try await store.count()
            try await store.close()
            return count
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Waits (up to 30 s) until the server has stored `count` rows, reading through one
    /// connection of its own.
    func waitForStored(_ count: Int) async throws {
        let store = try openStore()
        let stored: Int
        do {
            stored = try await store.waitForCount(count, timeout: .seconds(30))
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        guard stored >= count else { throw TestFailure("only \(stored) of \(count) stored") }
    }

    /// Graceful shutdown (as on SIGTERM); waits until the service has stopped.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
        if case .postgres(let postgres) = configuration.database, postgres.database.hasPrefix(TestPostgres.databasePrefix) {
            try await TestPostgres.dropDatabase(postgres.database)
        }
    }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    func client() async throws -> StompTestClient {
        try await StompTestClient.open(port: port)
    }

    /// A client connected as `token`'s user and subscribed to its remind destination.
    func subscribedClient(token: String, user: String, extra: StompHeaders = [:]) async throws -> StompTestClient {
        let client = try await client()
        guard let connected = await client.connect(token: token), connected.command == .connected else {
            throw TestFailure("CONNECT failed")
        }
        guard let receipt = await client.subscribe("/notice/\(user)/remind", extra: extra), receipt.command == .receipt else {
            throw TestFailure("SUBSCRIBE failed")
        }
        return client
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Publishes to and reads from the real broker, as other services would.
final class TestBroker: Sendable {
    let connection: RabbitMQConnection

    /// `topic`: also bind the consumed queue to this topic exchange with this routing key.
    init(consume queue: String? = nil, topic: (exchange: String, routingKey: String)? = nil) async {
        var logger = Logger(label: "test.broker")
        logger.logLevel = .critical
        var topology = AMQPTopology(queues: queue.map { [.init(name: $0)] } ?? [], consume: queue)
        if let queue, let topic {
            topology.exchanges = [.init(name: topic.exchange, type: "topic")]
            topology.bindings = [.init(queue: queue, exchange: topic.exchange, routingKey: topic.routingKey)]
        }
        connection = RabbitMQConnection(
            configuration: AMQPConfiguration(url: TestServer.amqpURL, connectionName: "test-broker"),
            topology: topology,
            logger: logger
        )
        connection.start()
        await connection.waitUntilConnected()
    }

    func publish(_ json: String, to queue: String) async throws {
        try await connection.publish(AMQPMessage(body: Array(json.utf8), properties: .persistentJSON), exchange: "", routingKey: queue)
    }

    func publish(_ json: String, exchange: String, routingKey: String) async throws {
        try await connection.publish(AMQPMessage(body: Array(json.utf8), properties: .persistentJSON), exchange: exchange, routingKey: routingKey)
    }

    /// Publishes every body in order (the broker keeps it: one task posts them all on one
    /// channel), at most `window` awaiting their confirm at once.
    func publishAll(_ bodies: [String], to queue: String, window: Int) async throws {
        let (confirms, confirmed) = AsyncStream.makeStream(of: Result<Void, any Error>.self)
        var iterator = confirms.makeAsyncIterator()
        var awaiting = 0
        func awaitOne() async throws {
            guard let result = await iterator.next() else { throw CancellationError() }
            awaiting -= 1
            try result.get()
        }
        for body in bodies {
            if awaiting >= window { try await awaitOne() }
            connection.publish(AMQPMessage(body: Array(body.utf8), properties: .persistentJSON), exchange: "", routingKey: queue) {
                confirmed.yield($0)
            }
            awaiting += 1
        }
        while awaiting > 0 { try await awaitOne() }
    }

    /// The next `count` messages of the consumed queue (settled), or fewer after `timeout`.
    func take(_ count: Int, timeout: Duration = .seconds(30)) async -> [AMQPDelivery] {
        let received = TestQueue<AMQPDelivery>()
        let reader = Task {
            for await batch in connection.deliveries {
                for delivery in batch { received.push(delivery) }
            }
        }
        var result: [AMQPDelivery] = []
        while result.count < count, let delivery = await received.next(timeout: timeout) {
            result.append(delivery)
        }
        reader.cancel()
        connection.settle(result.map(\.tag))
        return result
    }

    func close() async { await connection.shutdown() }
}
