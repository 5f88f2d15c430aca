import Foundation
public import Logging
import NoticeCore
public import NoticeStore
public import RabbitMQ
public import SockJS
public import StompServer
public import TokenIntrospection

/// The whole service's settings. Each component's defaults are its own configuration's
/// (`AMQPConfiguration()`, `StompSession.Configuration()`, `IntrospectionConfiguration(url:)`,
/// `SockJSConfiguration()`); the service's own are here. ``init(values:)`` reads the
/// environment onto them, and ``ConfigurationKey`` shows them as text.
public struct NoticeServiceConfiguration: Sendable, Hashable {
    /// Where notices are stored.
    public enum Database: Sendable, Hashable, CustomStringConvertible {
        case sqlite(path: String)
        /// Its description hides the password.
        case postgres(PostgresNoticeStore.Configuration)

        public var description: String {
            switch self {
            case .sqlite(let path): "sqlite:\(path)"
            case .postgres(let configuration): configuration.redactedURL
            }
        }
    }

    /// Which browser origins may open sessions (SPEC §3).
    public enum AllowedOrigins: Sendable, Hashable {
        case any
        /// Only these (and same-origin requests, and requests without `Origin`).
        case list(Set<String>)
    }

    /// Whether notices cross nodes through the broker (SPEC §8).
    public enum ClusterDelivery: String, Sendable, Hashable {
        case on, off
        /// On with PostgreSQL, off with SQLite (one node's store).
        case auto
    }

    public var httpHost = "127.0.0.1"
    public var httpPort = 8080
    /// The broker; ``init(values:)`` names the connection after ``nodeId``.
    public var amqp = AMQPConfiguration()
    public var queue = "notice.direct.queue"
    public var exchange = "notice.direct"
    public var pushTargets: Set<String> = ["SYS"]
    public var database = Database.sqlite(path: "data/notice.sqlite")
    /// Empty: same-origin requests only.
    public var allowedOrigins = AllowedOrigins.list([])
    public var session = StompSession.Configuration()
    /// Largest STOMP frame accepted; setting it bounds ``sockJS`` bodies by it.
    public var maxFrameBytes = 65_536 {
        didSet { boundSockJS() }
    }
    public var maxSessionsPerUser = 32
    /// Bytes queued for one slow connection; setting it bounds ``sockJS`` queues by it.
    public var maxOutboundBytes = 1 << 20 {
        didSet { boundSockJS() }
    }
    /// Largest AMQP message body ingested; larger ones are dead-lettered.
    public var maxMessageBytes = 256 * 1024
    /// How long an HTTP connection may sit without a request in progress.
    public var httpIdleTimeout = Duration.seconds(60)
    public var replayLimit = 100
    public var retentionDays = 90
    public var clusterDeliveryMode = ClusterDelivery.auto
    public var deliverExchange = "notice.deliver"
    /// Where inbox state changes are published for producers that want them (docs/inbox.md).
    public var eventsExchange = "notice.events"
    /// The scope a token needs for `POST /api/notices`.
    public var publishScope = "notice:publish"
    /// The scope of the admin API: ending a user's sessions on every node.
    public var adminScope = "notice:admin"
    public var devTokens: [String: String]?
    /// Token introspection (SPEC §5); exactly one of this and ``devTokens`` is set.
    public var introspection: IntrospectionConfiguration?
    /// By default the host name and process id.
    public var nodeId = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    public var demo = false
    public var logLevel = Logger.Level.info
    /// A connection that has not sent CONNECT within this time is closed.
    public var connectTimeout: Duration = .seconds(10)
    /// SockJS timers (sockjs-node's defaults) and bounds (from the frame and queue limits: set
    /// those first).
    public var sockJS = SockJSConfiguration()

    /// The defaults; neither ``devTokens`` nor ``introspection`` is set.
    public init() {
        boundSockJS()
    }

    /// Whether notices cross nodes through ``deliverExchange``: ``clusterDeliveryMode``
    /// resolved against ``database``.
    public var clusterDelivery: Bool {
        switch clusterDeliveryMode {
        case .on: true
        case .off: false
        case .auto: if case .postgres = database { true } else { false }
        }
    }

    /// The dead-letter queue: `<queue>.dead`.
    public var deadLetterQueue: String { queue + ".dead" }

    /// Bounds SockJS bodies and queues by ``maxFrameBytes`` and ``maxOutboundBytes`` (a body
    /// holds a JSON-escaped frame).
    mutating func boundSockJS() {
        sockJS.maxMessageBytes = 2 * maxFrameBytes + 1024
        sockJS.maxPendingInboundBytes = 4 * maxFrameBytes
        sockJS.maxQueuedBytes = maxOutboundBytes
    }
}

extension NoticeServiceConfiguration: CustomStringConvertible, CustomDebugStringConvertible {
    /// A summary safe for logs: no broker password, no dev tokens.
    public var description: String {
        "NoticeServiceConfiguration(http: \(httpHost):\(httpPort), amqp: \(amqp), queue: \(queue), database: \(database), "
            + "devTokens: \(devTokens.map { "\($0.count) entries" } ?? "none"), introspection: \(introspection.map { "\($0)" } ?? "none"), node: \(nodeId))"
    }

    public var debugDescription: String { description }
}
