import CoreMetrics
public import Prometheus
import StompServer

/// The service's own metrics (SPEC §7), made from one factory so that each service instance
/// (and each test) can have its own registry.
struct ServiceMetrics: Sendable {
    let consumed: CoreMetrics.Counter
    let stored: CoreMetrics.Counter
    let deadLettered: CoreMetrics.Counter
    let webSocketConnections: CoreMetrics.Meter
    /// Sessions, pushes, replays, connection objects.
    let stomp: StompMetrics
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
        consumed = CoreMetrics.Counter(label: "notice_consumed_total", dimensions: [], factory: factory)
        stored = CoreMetrics.Counter(label: "notice_stored_total", dimensions: [], factory: factory)
        deadLettered = CoreMetrics.Counter(label: "notice_dead_lettered_total", dimensions: [], factory: factory)
        webSocketConnections = CoreMetrics.Meter(label: "notice_connections", dimensions: [("transport", "websocket")], factory: factory)
        stomp = StompMetrics(factory: factory)
    }

    /// Open transport connections (SockJS: sessions) of `transport`.
    func connections(transport: String) -> CoreMetrics.Meter {
        transport == "websocket"
            ? webSocketConnections : CoreMetrics.Meter(label: "notice_connections", dimensions: [("transport", transport)], factory: factory)
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
