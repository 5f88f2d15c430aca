import Foundation
import Hummingbird
public import Logging
import NoticeCore
public import Prometheus
import RabbitMQ
public import ServiceLifecycle
import StompServer
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
    let opened = try await openStore(configuration.database, logger: logger)
    let store = opened.store
    let connection = RabbitMQConnection(
        configuration: configuration.amqp,
        topology: noticeTopology(configuration),
        logger: logger,
        metrics: metricsFactory
    )
    let hub = DeliveryHub(maxSessionsPerUser: configuration.maxSessionsPerUser)
    let health = ServiceHealth()
    let marks = DeliveryMarks()
    let relay =
        configuration.clusterDelivery
        ? ClusterRelay(amqp: configuration.amqp, exchange: configuration.deliverExchange, nodeId: configuration.nodeId, hub: hub, logger: logger)
        : nil
    let tokens: TokenCheck
    do {
        tokens = try makeTokenCheck(configuration, metrics: metricsFactory, logger: logger)
    } catch {
        try? await store.close()
        throw error
    }
    // One generator for the consumer and the HTTP publish endpoint: ids are unique per generator.
    let ids = NoticeIDGenerator(nodeId: configuration.nodeId) { Int64(Date().timeIntervalSince1970 * 1000) }
    let pipeline = IngestPipeline(
        connection: connection,
        store: store,
        hub: hub,
        marks: marks,
        relay: relay,
        health: health,
        configuration: configuration,
        ids: ids,
        metrics: metrics,
        logger: logger
    )
    // Inbox state changes reach the user's sessions here and, through the relay, on other nodes.
    // Producers hear of them on the events exchange (fire and forget: the change is stored).
    let inbox = InboxChanges(
        store: store,
        announce: { [hub, relay] events in
            hub.publish(events)
            relay?.forward(events)
        },
        publish: { [connection, exchange = configuration.eventsExchange, logger] routingKey, event in
            let message = AMQPMessage(body: Array(event.serialized.utf8), properties: .persistentJSON)
            connection.publish(message, exchange: exchange, routingKey: routingKey) { result in
                if case .failure(let error) = result {
                    logger.warning("could not publish an inbox event", metadata: ["inbox.event": "\(routingKey)", "error": "\(error)"])
                }
            }
        }
    )
    let stomp = StompEnvironment(
        hub: hub,
        verifier: tokens.verifier,
        store: store,
        inbox: inbox,
        marks: marks,
        presence: relay,
        session: configuration.session,
        maxFrameBytes: configuration.maxFrameBytes,
        maxOutboundBytes: configuration.maxOutboundBytes,
        replayLimit: configuration.replayLimit,
        connectTimeout: configuration.connectTimeout,
        metrics: metrics.stomp,
        logger: logger
    )
    let routes = NoticeRoutes(
        configuration: configuration,
        stomp: stomp,
        connection: connection,
        relay: relay,
        health: health,
        ids: ids,
        metrics: metrics,
        registry: registry
    )
    let app = routes.application(logger: logger, onServerRunning: onServerRunning)

    // A ServiceGroup shuts its services down in reverse order, each after the one behind it
    // has finished: the pipeline first, the store last.
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let storeService = opened.service { services.append(.init(service: storeService)) }
    if let httpClient = tokens.httpClient { services.append(.init(service: HTTPClientService(client: httpClient))) }
    services += [
        .init(service: StoreCloser(store: store)),
        .init(service: app),
        .init(service: routes.sockJS),
        .init(service: SessionCloser(hub: hub, logger: logger)),
        .init(service: RetentionService(store: store, retention: .seconds(configuration.retentionDays * 86_400), logger: logger)),
        .init(service: DeliveryRecorder(store: store, marks: marks, logger: logger)),
    ]
    if let relay { services.append(.init(service: relay)) }
    services.append(.init(service: pipeline))
    return ServiceGroup(
        configuration: .init(services: services, gracefulShutdownSignals: signals, cancellationSignals: [], logger: logger)
    )
}
