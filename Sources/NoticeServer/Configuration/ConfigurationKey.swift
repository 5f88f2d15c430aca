import Foundation
import Logging
import NoticeCore
import RabbitMQ
import StompServer
import TokenIntrospection

/// Every setting the service reads: its environment variable, its command-line option, its
/// default and its meaning. The default is not written here: it is the text of the default
/// value of the configuration that owns the setting (``NoticeServiceConfiguration`` or a
/// component's). ``NoticeServiceConfiguration/init(values:)`` reads these variables, and
/// `serve` / `check-config` accept ``option`` for each; docs/configuration.md mirrors the
/// table by hand (ConfigurationTests check it names every key).
public struct ConfigurationKey: Sendable, Hashable {
    /// The environment variable, e.g. `NOTICE_HTTP_PORT`.
    public let name: String
    /// The default as the variable would be set to it; `nil`: unset (``help`` may say what
    /// that means).
    public let defaultValue: String?
    public let help: String

    /// The command-line option, e.g. `--http-port`.
    public var option: String {
        "--" + name.dropFirst("NOTICE_".count).lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// The key of the environment variable `name`.
    public init?(name: String) {
        guard let key = Self.all.first(where: { $0.name == name }) else { return nil }
        self = key
    }

    /// The key whose option is `option` (`--http-port`).
    public init?(option: String) {
        guard let key = Self.all.first(where: { $0.option == option }) else { return nil }
        self = key
    }

    private init(_ name: String, _ defaultValue: String?, _ help: String) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
    }
}

extension ConfigurationKey {
    /// The defaults the table shows.
    private static let service = NoticeServiceConfiguration()
    private static let introspection = IntrospectionConfiguration(url: "")

    public static let httpHost = Self("NOTICE_HTTP_HOST", service.httpHost, "address the HTTP/WebSocket listener binds")
    public static let httpPort = Self("NOTICE_HTTP_PORT", "\(service.httpPort)", "port of the HTTP/WebSocket listener (0: any free port)")
    public static let amqpURL = Self("NOTICE_AMQP_URL", service.amqp.url, "RabbitMQ URL (amqp://user:pass@host:port/vhost)")
    public static let amqpQueue = Self("NOTICE_AMQP_QUEUE", service.queue, "durable notice queue; <queue>.dead is its dead-letter queue")
    public static let amqpExchange = Self(
        "NOTICE_AMQP_EXCHANGE",
        service.exchange,
        "durable direct exchange bound to the queue with routing key 'notice'"
    )
    public static let amqpPrefetch = Self("NOTICE_AMQP_PREFETCH", "\(service.amqp.prefetch)", "basic.qos prefetch count (1-65535)")
    public static let amqpHeartbeat = Self(
        "NOTICE_AMQP_HEARTBEAT_SECONDS",
        "\(service.amqp.heartbeatSeconds)",
        "AMQP heartbeat asked of the broker (0 disables)"
    )
    public static let pushTargets = Self(
        "NOTICE_PUSH_TARGETS",
        service.pushTargets.sorted().joined(separator: ","),
        "comma-separated sendTarget values that are pushed (all are stored)"
    )
    public static let clusterDelivery = Self(
        "NOTICE_CLUSTER_DELIVERY",
        service.clusterDeliveryMode.rawValue,
        "delivery across nodes through RabbitMQ: on, off, or auto (on with PostgreSQL)"
    )
    public static let deliverExchange = Self(
        "NOTICE_AMQP_DELIVER_EXCHANGE",
        service.deliverExchange,
        "topic exchange that carries notices across nodes"
    )
    public static let eventsExchange = Self(
        "NOTICE_AMQP_EVENTS_EXCHANGE",
        service.eventsExchange,
        "topic exchange inbox state changes are published to, routing key the change (read, recalled, …)"
    )
    public static let databaseURL = Self(
        "NOTICE_DB_URL",
        "\(service.database)",
        "store: sqlite:<path>, or postgres://user:password@host[:port]/database[?sslmode=disable|require|verify-full]"
    )
    public static let allowedOrigins = Self(
        "NOTICE_ALLOWED_ORIGINS",
        {
            switch service.allowedOrigins {
            case .any: "*"
            case .list(let origins): origins.sorted().joined(separator: ",")
            }
        }(),
        "comma-separated browser origins allowed (* for all; empty: same origin as Host only)"
    )
    public static let heartbeat = Self(
        "NOTICE_HEARTBEAT_MS",
        "\(service.session.heartBeatMillis)",
        "STOMP heart-beat the server offers both ways, in ms (0 disables)"
    )
    public static let maxFrameBytes = Self("NOTICE_MAX_FRAME_BYTES", "\(service.maxFrameBytes)", "largest STOMP frame accepted from a client")
    public static let maxSessionsPerUser = Self(
        "NOTICE_MAX_SESSIONS_PER_USER",
        "\(service.maxSessionsPerUser)",
        "most open sessions of one user on a node"
    )
    public static let maxOutboundBytes = Self(
        "NOTICE_MAX_OUTBOUND_BYTES",
        "\(service.maxOutboundBytes)",
        "bytes queued for one slow connection before it is closed"
    )
    public static let maxMessageBytes = Self(
        "NOTICE_MAX_MESSAGE_BYTES",
        "\(service.maxMessageBytes)",
        "largest AMQP message body accepted; larger ones are dead-lettered with the reason"
    )
    public static let httpIdleTimeout = Self(
        "NOTICE_HTTP_IDLE_TIMEOUT_SECONDS",
        "\(service.httpIdleTimeout.components.seconds)",
        "an HTTP connection with no request in progress, or none begun, is closed after this long"
    )
    public static let replayLimit = Self("NOTICE_REPLAY_LIMIT", "\(service.replayLimit)", "most stored notices replayed on subscribe")
    public static let retentionDays = Self("NOTICE_RETENTION_DAYS", "\(service.retentionDays)", "stored notices older than this are purged")
    public static let publishScope = Self("NOTICE_PUBLISH_SCOPE", service.publishScope, "scope a token needs for POST /api/notices")
    public static let adminScope = Self(
        "NOTICE_ADMIN_SCOPE",
        service.adminScope,
        "scope a token needs to end a user's sessions (DELETE /api/admin/users/<id>/sessions)"
    )
    public static let devTokens = Self(
        "NOTICE_DEV_TOKENS",
        service.devTokens.map { $0.map { "\($0.key):\($0.value)" }.sorted().joined(separator: ",") },
        "development only: token1:user1,token2:user2 instead of introspection"
    )
    public static let introspectionURL = Self(
        "NOTICE_INTROSPECTION_URL",
        service.introspection?.url,
        "token introspection endpoint (RFC 7662 or Spring check_token)"
    )
    public static let introspectionStyle = Self(
        "NOTICE_INTROSPECTION_STYLE",
        introspection.style.rawValue,
        "rfc7662, or spring for /oauth/check_token"
    )
    public static let introspectionClientId = Self(
        "NOTICE_INTROSPECTION_CLIENT_ID",
        introspection.clientId,
        "HTTP Basic user for the introspection endpoint"
    )
    public static let introspectionClientSecret = Self(
        "NOTICE_INTROSPECTION_CLIENT_SECRET",
        introspection.clientSecret,
        "HTTP Basic password for the introspection endpoint"
    )
    public static let introspectionCacheSeconds = Self(
        "NOTICE_INTROSPECTION_CACHE_SECONDS",
        "\(introspection.cacheTTL.components.seconds)",
        "longest time a positive introspection answer is cached (never past exp)"
    )
    public static let introspectionMaxRate = Self(
        "NOTICE_INTROSPECTION_MAX_RATE",
        "\(introspection.maxRequestsPerSecond)",
        "most introspection requests per second (a check beyond it waits its turn)"
    )
    public static let introspectionMaxWait = Self(
        "NOTICE_INTROSPECTION_MAX_WAIT_MS",
        "\(introspection.maxRateWait.saturatedNanoseconds / 1_000_000)",
        "longest wait for a turn under NOTICE_INTROSPECTION_MAX_RATE before a CONNECT is refused"
    )
    public static let userIdClaims = Self(
        "NOTICE_USER_ID_CLAIMS",
        introspection.userIdClaims.joined(separator: ","),
        "claims tried, in order, for the user id"
    )
    /// Its default (host name and process id) differs per process: the table shows none.
    public static let nodeId = Self("NOTICE_NODE_ID", nil, "name of this node (default: host name and process id)")
    public static let demo = Self("NOTICE_DEMO", "\(service.demo)", "serve the demo page at / and POST /demo/publish (needs NOTICE_DEV_TOKENS)")
    public static let logLevel = Self("NOTICE_LOG_LEVEL", service.logLevel.rawValue, "trace, debug, info, notice, warning, error or critical")

    /// All keys, in the order `--help` lists them.
    public static let all: [ConfigurationKey] = [
        httpHost, httpPort, amqpURL, amqpQueue, amqpExchange, amqpPrefetch, amqpHeartbeat, pushTargets, databaseURL,
        clusterDelivery, deliverExchange, eventsExchange,
        allowedOrigins, heartbeat, maxFrameBytes, maxSessionsPerUser, maxOutboundBytes, maxMessageBytes, httpIdleTimeout, replayLimit, retentionDays,
        publishScope, adminScope, devTokens, introspectionURL, introspectionStyle, introspectionClientId, introspectionClientSecret,
        introspectionCacheSeconds, introspectionMaxRate, introspectionMaxWait, userIdClaims, nodeId, demo, logLevel,
    ]
}
