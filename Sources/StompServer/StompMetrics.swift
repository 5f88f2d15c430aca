public import CoreMetrics

/// The STOMP server's metrics (SPEC §7), made from the service's factory.
public struct StompMetrics: Sendable {
    public let pushed: Counter
    /// MESSAGE frames sent by replay on SUBSCRIBE.
    public let replayed: Counter
    public let pushLatency: Timer
    /// STOMP connection objects not yet freed, whatever their state: returns to the number of
    /// open connections once closed ones are released (a leak shows as a gap between the two).
    public let connectionObjects: Meter
    private let webSocketSessions: Meter
    private let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
        pushed = Counter(label: "notice_pushed_total", dimensions: [], factory: factory)
        replayed = Counter(label: "notice_replayed_total", dimensions: [], factory: factory)
        pushLatency = Timer(label: "notice_push_latency_seconds", dimensions: [], factory: factory)
        connectionObjects = Meter(label: "notice_stomp_connection_objects", dimensions: [], factory: factory)
        webSocketSessions = Meter(label: "notice_sessions", dimensions: [("transport", "websocket")], factory: factory)
    }

    /// Connected STOMP sessions over `transport` (SPEC §7: sessions per transport).
    public func sessions(transport: String) -> Meter {
        transport == "websocket" ? webSocketSessions : Meter(label: "notice_sessions", dimensions: [("transport", transport)], factory: factory)
    }
}
