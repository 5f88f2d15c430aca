import CoreMetrics
public import Prometheus

/// The service's own metrics (SPEC §7), made from one factory so that each service instance
/// (and each test) can have its own registry.
struct ServiceMetrics: Sendable {
    let consumed: CoreMetrics.Counter
    let stored: CoreMetrics.Counter
    let deadLettered: CoreMetrics.Counter
    let pushed: CoreMetrics.Counter
    /// MESSAGE frames sent by replay on SUBSCRIBE.
    let replayed: CoreMetrics.Counter
    let pushLatency: CoreMetrics.Timer
    let webSocketConnections: CoreMetrics.Meter
    let webSocketSessions: CoreMetrics.Meter
    /// STOMP connection objects not yet freed, whatever their state: returns to the number of
    /// open connections once closed ones are released (a leak shows as a gap between the two).
    let connectionObjects: CoreMetrics.Meter
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
        consumed = CoreMetrics.Counter(label: "notice_consumed_total", dimensions: [], factory: factory)
        stored = CoreMetrics.Counter(label: "notice_stored_total", dimensions: [], factory: factory)
        deadLettered = CoreMetrics.Counter(label: "notice_dead_lettered_total", dimensions: [], factory: factory)
        pushed = CoreMetrics.Counter(label: "notice_pushed_total", dimensions: [], factory: factory)
        replayed = CoreMetrics.Counter(label: "notice_replayed_total", dimensions: [], factory: factory)
        pushLatency = CoreMetrics.Timer(label: "notice_push_latency_seconds", dimensions: [], factory: factory)
        webSocketConnections = CoreMetrics.Meter(label: "notice_connections", dimensions: [("transport", "websocket")], factory: factory)
        webSocketSessions = CoreMetrics.Meter(label: "notice_sessions", dimensions: [("transport", "websocket")], factory: factory)
        connectionObjects = CoreMetrics.Meter(label: "notice_stomp_connection_objects", dimensions: [], factory: factory)
    }

    /// Open transport connections (SockJS: sessions) of `transport`.
    func connections(transport: String) -> CoreMetrics.Meter {
        transport == "websocket"
            ? webSocketConnections : CoreMetrics.Meter(label: "notice_connections", dimensions: [("transport", transport)], factory: factory)
    }

    /// Connected STOMP sessions over `transport` (SPEC §7: sessions per transport).
    func sessions(transport: String) -> CoreMetrics.Meter {
        transport == "websocket"
            ? webSocketSessions : CoreMetrics.Meter(label: "notice_sessions", dimensions: [("transport", transport)], factory: factory)
    }
}

extension PrometheusMetricsFactory {
    /// A factory on `registry` with histogram buckets suited to push and introspection latency.
    public static func notice(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        let buckets: [Duration] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        ]
        factory.durationHistogramBuckets = [
            "notice_push_latency_seconds": buckets,
            "notice_introspection_duration_seconds": buckets,
        ]
        return factory
    }
}
