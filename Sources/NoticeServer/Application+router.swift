import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NoticeCore
import Prometheus
import RabbitMQ
import SockJS
import StompServer

/// The HTTP side of the service: the routes (health, API, metrics, demo), STOMP at `/ws` over
/// raw WebSocket and SockJS, and the Hummingbird application that serves them.
struct NoticeRoutes {
    let configuration: NoticeServiceConfiguration
    let stomp: StompEnvironment
    let connection: RabbitMQConnection
    let relay: ClusterRelay?
    let health: ServiceHealth
    let ids: NoticeIDGenerator
    let registry: PrometheusCollectorRegistry
    let origins: OriginPolicy
    /// Handshakes refused for their origin, answered 403 by ``ForbiddenOriginUpgradeHandler``.
    let refused = RefusedHandshakes()
    let webSocket: WebSocketEndpoint
    /// SockJS at `/ws/...`; a plain GET `/ws` (no Upgrade) is its greeting. A service: its
    /// sessions' timers stop with it.
    let sockJS: SockJSServer<NoticeRequestContext>

    init(
        configuration: NoticeServiceConfiguration,
        stomp: StompEnvironment,
        connection: RabbitMQConnection,
        relay: ClusterRelay?,
        health: ServiceHealth,
        ids: NoticeIDGenerator,
        metrics: ServiceMetrics,
        registry: PrometheusCollectorRegistry
    ) {
        self.configuration = configuration
        self.stomp = stomp
        self.connection = connection
        self.relay = relay
        self.health = health
        self.ids = ids
        self.registry = registry
        let origins = OriginPolicy(allowed: configuration.allowedOrigins)
        self.origins = origins
        let webSocket = WebSocketEndpoint(
            environment: stomp,
            metrics: metrics,
            origins: origins,
            maxMessageBytes: configuration.sockJS.maxMessageBytes
        )
        self.webSocket = webSocket
        self.sockJS = SockJSEndpoint.make(
            environment: stomp,
            metrics: metrics,
            origins: origins,
            refused: refused,
            sessionIds: webSocket.sessionIds,
            configuration: configuration.sockJS
        )
    }

    /// The routes of every request that is not a raw STOMP WebSocket handshake.
    func buildRouters() -> (http: Router<NoticeRequestContext>, webSocket: Router<NoticeRequestContext>) {
        let router = Router(context: NoticeRequestContext.self)
        HealthRoutes(connection: connection, relay: relay, store: stomp.store, health: health).addRoutes(to: router)
        NoticeAPIRoutes(
            verifier: stomp.verifier,
            store: stomp.store,
            inbox: stomp.inbox,
            connection: connection,
            queue: configuration.queue,
            publishScope: configuration.publishScope,
            ids: ids,
            maxBodyBytes: NoticeValidator.maxContentBytes + 16 * 1024
        ).addRoutes(to: router)
        AdminRoutes(
            authentication: BearerAuthentication(verifier: stomp.verifier),
            hub: stomp.hub,
            relay: relay,
            adminScope: configuration.adminScope
        ).addRoutes(to: router)
        router.get("/metrics") { [registry] _, _ in
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
        sockJS.addRoutes(to: router, webSocketRouter: webSocketRouter)
        return (router, webSocketRouter)
    }

    /// The HTTP server: a raw STOMP handshake on `/ws` goes to ``WebSocketEndpoint`` on
    /// SwiftNIO channel handlers, everything else to Hummingbird (``NoticeServerChannel``).
    func application(
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void
    ) -> some ApplicationProtocol {
        let (router, webSocketRouter) = buildRouters()
        let idleTimeout = TimeAmount.nanoseconds(configuration.httpIdleTimeout.saturatedNanoseconds)
        return Application(
            router: router,
            server: HTTPServerBuilder { [webSocketResponder = webSocketRouter.buildResponder(), refused, webSocket, configuration] responder in
                NoticeServerChannel(
                    hummingbird: HTTP1WebSocketUpgradeChannel(
                        responder: responder,
                        webSocketResponder: webSocketResponder,
                        configuration: .init(
                            http1: .init(
                                additionalChannelHandlers: [ForbiddenOriginUpgradeHandler(refused: refused), BrowserGoneHandler()],
                                idleTimeout: idleTimeout
                            ),
                            ws: .init(maxFrameSize: configuration.sockJS.maxMessageBytes, autoPing: .disabled)
                        )
                    ),
                    stomp: webSocket,
                    headTimeout: idleTimeout
                )
            },
            configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: "notice-service"),
            onServerRunning: { channel in
                logger.info("listening", metadata: ["http.address": "\(channel.localAddress?.description ?? "?")"])
                await onServerRunning(channel.localAddress?.port ?? 0)
            },
            logger: logger
        )
    }
}
