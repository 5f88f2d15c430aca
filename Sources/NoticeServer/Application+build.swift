import AsyncHTTPClient
import CoreMetrics
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
public import Logging
import NoticeCore
import NoticeStore
public import Prometheus
import RabbitMQ
public import ServiceLifecycle
import SockJS
import TokenIntrospection
public import UnixSignals

/// Builds the whole service from its configuration: store, broker connection, ingest
/// pipeline, delivery hub, and the HTTP/WebSocket server, as one `ServiceGroup`.
///
/// Graceful shutdown (SIGTERM/SIGINT when `signals` names them, or
/// `triggerGracefulShutdown()`) runs in the order of SPEC §9: stop consuming and ack what
/// is in flight, record deliveries, tell every session `server shutting down`, stop the
/// HTTP server, close the store. `onServerRunning` receives the bound port.
public func buildService(
    _ configuration: NoticeServiceConfiguration,
    logger: Logger,
    signals: [UnixSignal] = [],
    metrics registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> ServiceGroup {
    let metricsFactory = PrometheusMetricsFactory.notice(registry: registry)
    let metrics = ServiceMetrics(factory: metricsFactory)
    let store: any NoticeStore
    switch configuration.database {
    case .sqlite(let path):
        store = try SQLiteNoticeStore(path: path)
    case .postgres(let postgres):
        store = PostgresNoticeStore(configuration: postgres, logger: logger)
    }
    do {
        try await store.migrate()
    } catch {
        try? await store.close()
        throw error
    }

    let connection = RabbitMQConnection(
        configuration: configuration.amqp,
        topology: noticeTopology(configuration),
        logger: logger,
        metrics: metricsFactory
    )
    let hub = DeliveryHub(maxSessionsPerUser: configuration.maxSessionsPerUser)
    let health = ServiceHealth()
    let recorder = DeliveryRecorder(store: store, logger: logger)
    let relay =
        configuration.clusterDelivery
        ? ClusterRelay(amqp: configuration.amqp, exchange: configuration.deliverExchange, nodeId: configuration.nodeId, hub: hub, logger: logger)
        : nil
    let verifier: any TokenVerifier
    var httpClient: HTTPClient?
    if let introspection = configuration.introspection {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        httpClient = client
        let introspectionClient = IntrospectionClient(configuration: introspection, httpClient: client)
        let introspector = TokenIntrospector(configuration: introspection, metrics: metricsFactory) { token in
            await introspectionClient.introspect(token)
        }
        verifier = IntrospectionVerifier(introspector: introspector, logger: logger)
        logger.info("tokens are checked by introspection", metadata: ["auth.introspection": "\(introspection)"])
    } else if let devTokens = configuration.devTokens {
        logger.warning(
            "NOTICE_DEV_TOKENS is set: tokens are checked against a fixed development table, not an authorization server. Never use this in production."
        )
        verifier = DevTokenVerifier(users: devTokens)
    } else {
        throw ConfigurationError(problems: ["no token verifier configured"])
    }
    // One generator for the consumer and the HTTP publish endpoint: ids are unique per generator.
    let ids = NoticeIDGenerator(nodeId: configuration.nodeId) { Int64(Date().timeIntervalSince1970 * 1000) }
    let pipeline = IngestPipeline(
        connection: connection,
        store: store,
        hub: hub,
        recorder: recorder,
        relay: relay,
        health: health,
        configuration: configuration,
        ids: ids,
        metrics: metrics,
        logger: logger
    )

    let environment = StompEnvironment(
        hub: hub,
        verifier: verifier,
        store: store,
        recorder: recorder,
        relay: relay,
        session: configuration.session,
        maxFrameBytes: configuration.maxFrameBytes,
        maxOutboundBytes: configuration.maxOutboundBytes,
        replayLimit: configuration.replayLimit,
        connectTimeout: configuration.connectTimeout,
        metrics: metrics,
        logger: logger
    )
    let origins = OriginPolicy(allowed: configuration.allowedOrigins)
    let refused = RefusedHandshakes()

    let router = Router(context: NoticeRequestContext.self)
    HealthRoutes(connection: connection, relay: relay, store: store, health: health).addRoutes(to: router)
    NoticeAPIRoutes(
        verifier: verifier,
        store: store,
        connection: connection,
        queue: configuration.queue,
        publishScope: configuration.publishScope,
        ids: ids,
        maxBodyBytes: NoticeValidator.maxContentBytes + 16 * 1024
    ).addRoutes(to: router)
    router.get("/metrics") { _, _ in
        Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: .init(bytes: registry.emitToBuffer()))
        )
    }
    if configuration.demo, let devTokens = configuration.devTokens {
        DemoRoutes(devUsers: devTokens, connection: connection, queue: configuration.queue).addRoutes(to: router)
    }

    let webSocketRouter = Router(context: NoticeRequestContext.self)
    let webSocketEndpoint = WebSocketEndpoint(environment: environment, origins: origins, maxMessageBytes: configuration.sockJS.maxMessageBytes)
    // SockJS at /ws/...; a plain GET /ws (no Upgrade) is its greeting.
    let sockJS = SockJSEndpoint.make(
        environment: environment,
        origins: origins,
        refused: refused,
        sessionIds: webSocketEndpoint.sessionIds,
        configuration: configuration.sockJS
    )
    sockJS.addRoutes(to: router, webSocketRouter: webSocketRouter)

    let app = Application(
        router: router,
        server: HTTPServerBuilder { [webSocketResponder = webSocketRouter.buildResponder()] responder in
            NoticeServerChannel(
                hummingbird: HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    webSocketResponder: webSocketResponder,
                    configuration: .init(
                        http1: .init(
                            additionalChannelHandlers: [ForbiddenOriginUpgradeHandler(refused: refused), BrowserGoneHandler()],
                            idleTimeout: .nanoseconds(StompConnection.nanos(configuration.httpIdleTimeout))
                        ),
                        ws: .init(maxFrameSize: configuration.sockJS.maxMessageBytes, autoPing: .disabled)
                    )
                ),
                stomp: webSocketEndpoint,
                headTimeout: .nanoseconds(StompConnection.nanos(configuration.httpIdleTimeout))
            )
        },
        configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: "notice-service"),
        onServerRunning: { channel in
            logger.info("listening", metadata: ["http.address": "\(channel.localAddress?.description ?? "?")"])
            await onServerRunning(channel.localAddress?.port ?? 0)
        },
        logger: logger
    )
    // A ServiceGroup shuts its services down in reverse order, each after the one behind it has finished.
    return ServiceGroup(
        configuration: .init(
            services: (httpClient.map { [ServiceGroupConfiguration.ServiceConfiguration(service: HTTPClientService(client: $0))] } ?? []) + [
                .init(service: StoreCloser(store: store)),
                .init(service: app),
                .init(service: sockJS),
                .init(service: SessionCloser(hub: hub, logger: logger)),
                .init(service: RetentionService(store: store, retention: .seconds(configuration.retentionDays * 86_400), logger: logger)),
                .init(service: recorder),
            ] + (relay.map { [.init(service: $0)] } ?? []) + [
                .init(service: pipeline)
            ],
            gracefulShutdownSignals: signals,
            cancellationSignals: [],
            logger: logger
        )
    )
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
struct StoreCloser: Service, CustomStringConvertible {
    let store: any NoticeStore
    var description: String { "StoreCloser" }

    func run() async throws {
        try? await gracefulShutdown()
        try await store.close()
    }
}

/// On shutdown, tells every STOMP session `server shutting down` and waits (up to 5 s)
/// until they have closed, before the HTTP server goes.
struct SessionCloser: Service, CustomStringConvertible {
    let hub: DeliveryHub
    let logger: Logger
    var description: String { "SessionCloser" }

    func run() async throws {
        try? await gracefulShutdown()
        let open = hub.sessionCount
        hub.closeAll(message: "server shutting down", detail: "reconnect to another node")
        let deadline = ContinuousClock.now + .seconds(5)
        while hub.sessionCount > 0, ContinuousClock.now < deadline {
            do { try await Task.sleep(for: .milliseconds(10)) } catch { break }
        }
        logger.info("sessions closed", metadata: ["stomp.sessions": "\(open)", "stomp.still_open": "\(hub.sessionCount)"])
    }
}
