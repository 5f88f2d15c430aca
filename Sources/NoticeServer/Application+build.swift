import Foundation
public import Hummingbird
import HummingbirdWebSocket
public import Logging
import NoticeCore
import NoticeStore
import RabbitMQ
import ServiceLifecycle

/// Builds the whole service from its configuration: store, broker connection, ingest
/// pipeline, delivery hub, and the HTTP/WebSocket server. Run it with `runService()`.
///
/// `onServerRunning` receives the bound port (useful with port 0).
public func buildApplication(
    _ configuration: NoticeServiceConfiguration,
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    let store: any NoticeStore
    switch configuration.database {
    case .sqlite(let path):
        store = try SQLiteNoticeStore(path: path)
    }
    try await store.migrate()

    let connection = RabbitMQConnection(
        configuration: configuration.amqp,
        topology: noticeTopology(configuration),
        logger: logger
    )
    let hub = DeliveryHub(maxSessionsPerUser: configuration.maxSessionsPerUser)
    let health = ServiceHealth()
    let recorder = DeliveryRecorder(store: store, logger: logger)
    let verifier: any TokenVerifier
    if let devTokens = configuration.devTokens {
        logger.warning("NOTICE_DEV_TOKENS is set: tokens are checked against a fixed development table, not an authorization server. Never use this in production.")
        verifier = DevTokenVerifier(users: devTokens)
    } else {
        throw ConfigurationError(problems: ["no token verifier configured"])
    }
    let pipeline = IngestPipeline(
        connection: connection,
        store: store,
        hub: hub,
        health: health,
        configuration: configuration,
        ids: NoticeIDGenerator(nodeId: configuration.nodeId) { Int64(Date().timeIntervalSince1970 * 1000) },
        logger: logger
    )

    let environment = StompEnvironment(
        hub: hub,
        verifier: verifier,
        store: store,
        recorder: recorder,
        session: configuration.session,
        maxFrameBytes: configuration.maxFrameBytes,
        maxOutboundBytes: configuration.maxOutboundBytes,
        connectTimeout: configuration.connectTimeout,
        logger: logger
    )
    let origins = OriginPolicy(allowed: configuration.allowedOrigins)

    let router = Router(context: BasicWebSocketRequestContext.self)
    router.get("/ws") { request, _ -> Response in
        guard origins.allows(request) else {
            throw APIError(status: .forbidden, error: "forbidden_origin", message: "this origin may not connect")
        }
        throw APIError(status: .badRequest, error: "upgrade_required", message: "Can \"Upgrade\" only to \"WebSocket\".")
    }
    HealthRoutes(connection: connection, store: store, health: health).addRoutes(to: router)
    if configuration.demo, let devTokens = configuration.devTokens {
        DemoRoutes(devUsers: devTokens, connection: connection, queue: configuration.queue).addRoutes(to: router)
    }

    let webSocketRouter = Router(context: BasicWebSocketRequestContext.self)
    WebSocketEndpoint(environment: environment, origins: origins).addRoutes(to: webSocketRouter)

    var app = Application(
        router: router,
        server: .http1WebSocketUpgrade(
            webSocketRouter: webSocketRouter,
            configuration: .init(ws: .init(maxFrameSize: configuration.maxFrameBytes + 1024, autoPing: .disabled))
        ),
        configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: "notice-service"),
        onServerRunning: { channel in
            logger.info("listening", metadata: ["http.address": "\(channel.localAddress?.description ?? "?")"])
            await onServerRunning(channel.localAddress?.port ?? 0)
        },
        logger: logger
    )
    // Shut down in reverse: the server (sessions get ERROR), deliveries, ingest (acks in-flight), then the store.
    app.addServices(StoreCloser(store: store), pipeline, recorder)
    return app
}

/// The queues and exchanges of SPEC §1: the durable notice queue, the direct exchange
/// bound to it with routing key `notice`, and the dead-letter queue.
func noticeTopology(_ configuration: NoticeServiceConfiguration) -> AMQPTopology {
    AMQPTopology(
        queues: [.init(name: configuration.queue), .init(name: configuration.deadLetterQueue)],
        exchanges: [.init(name: configuration.exchange, type: "direct")],
        bindings: [.init(queue: configuration.queue, exchange: configuration.exchange, routingKey: "notice")],
        consume: configuration.queue
    )
}

/// Closes the store after everything that uses it has stopped.
struct StoreCloser: Service {
    let store: any NoticeStore

    func run() async throws {
        try? await gracefulShutdown()
        try await store.close()
    }
}
