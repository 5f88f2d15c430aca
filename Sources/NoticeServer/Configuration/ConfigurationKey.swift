/// Every setting the service reads, with its environment variable, default and meaning.
/// The configuration reader and the options of `serve --help` / `check-config` use this
/// table; docs/configuration.md mirrors it by hand.
public struct ConfigurationKey: Sendable, Hashable {
    /// The environment variable, e.g. `NOTICE_HTTP_PORT`.
    public let name: String
    /// The default, as text; `nil`: unset.
    public let defaultValue: String?
    public let help: String

    /// The command-line option, e.g. `--http-port`.
    public var option: String {
        "--" + name.dropFirst("NOTICE_".count).lowercased().replacingOccurrences(of: "_", with: "-")
    }

    public static let httpHost = Self("NOTICE_HTTP_HOST", "127.0.0.1", "address the HTTP/WebSocket listener binds")
    public static let httpPort = Self("NOTICE_HTTP_PORT", "8080", "port of the HTTP/WebSocket listener (0: any free port)")
    public static let amqpURL = Self("NOTICE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL (amqp://user:pass@host:port/vhost)")
    public static let amqpQueue = Self("NOTICE_AMQP_QUEUE", "notice.direct.queue", "durable notice queue; <queue>.dead is its dead-letter queue")
    public static let amqpExchange = Self(
        "NOTICE_AMQP_EXCHANGE",
        "notice.direct",
        "durable direct exchange bound to the queue with routing key 'notice'"
    )
    public static let amqpPrefetch = Self("NOTICE_AMQP_PREFETCH", "256", "basic.qos prefetch count (1-65535)")
    public static let amqpHeartbeat = Self("NOTICE_AMQP_HEARTBEAT_SECONDS", "30", "AMQP heartbeat asked of the broker (0 disables)")
    public static let pushTargets = Self("NOTICE_PUSH_TARGETS", "SYS", "comma-separated sendTarget values that are pushed (all are stored)")
    public static let clusterDelivery = Self(
        "NOTICE_CLUSTER_DELIVERY",
        "auto",
        "delivery across nodes through RabbitMQ: on, off, or auto (on with PostgreSQL)"
    )
    public static let deliverExchange = Self("NOTICE_AMQP_DELIVER_EXCHANGE", "notice.deliver", "topic exchange that carries notices across nodes")
    public static let databaseURL = Self(
        "NOTICE_DB_URL",
        "sqlite:data/notice.sqlite",
        "store: sqlite:<path>, or postgres://user:password@host[:port]/database[?sslmode=disable|require|verify-full]"
    )
    public static let allowedOrigins = Self(
        "NOTICE_ALLOWED_ORIGINS",
        "",
        "comma-separated browser origins allowed (* for all; empty: same origin as Host only)"
    )
    public static let heartbeat = Self("NOTICE_HEARTBEAT_MS", "10000", "STOMP heart-beat the server offers both ways, in ms (0 disables)")
    public static let maxFrameBytes = Self("NOTICE_MAX_FRAME_BYTES", "65536", "largest STOMP frame accepted from a client")
    public static let maxSessionsPerUser = Self("NOTICE_MAX_SESSIONS_PER_USER", "32", "most open sessions of one user on a node")
    public static let maxOutboundBytes = Self("NOTICE_MAX_OUTBOUND_BYTES", "1048576", "bytes queued for one slow connection before it is closed")
    public static let maxMessageBytes = Self(
        "NOTICE_MAX_MESSAGE_BYTES",
        "262144",
        "largest AMQP message body accepted; larger ones are dead-lettered with the reason"
    )
    public static let httpIdleTimeout = Self(
        "NOTICE_HTTP_IDLE_TIMEOUT_SECONDS",
        "60",
        "an HTTP connection with no request in progress, or none begun, is closed after this long"
    )
    public static let replayLimit = Self("NOTICE_REPLAY_LIMIT", "100", "most stored notices replayed on subscribe")
    public static let retentionDays = Self("NOTICE_RETENTION_DAYS", "90", "stored notices older than this are purged")
    public static let publishScope = Self("NOTICE_PUBLISH_SCOPE", "notice:publish", "scope a token needs for POST /api/notices")
    public static let devTokens = Self("NOTICE_DEV_TOKENS", nil, "development only: token1:user1,token2:user2 instead of introspection")
    public static let introspectionURL = Self("NOTICE_INTROSPECTION_URL", nil, "token introspection endpoint (RFC 7662 or Spring check_token)")
    public static let introspectionStyle = Self("NOTICE_INTROSPECTION_STYLE", "rfc7662", "rfc7662, or spring for /oauth/check_token")
    public static let introspectionClientId = Self("NOTICE_INTROSPECTION_CLIENT_ID", nil, "HTTP Basic user for the introspection endpoint")
    public static let introspectionClientSecret = Self(
        "NOTICE_INTROSPECTION_CLIENT_SECRET",
        nil,
        "HTTP Basic password for the introspection endpoint"
    )
    public static let introspectionCacheSeconds = Self(
        "NOTICE_INTROSPECTION_CACHE_SECONDS",
        "60",
        "longest time a positive introspection answer is cached (never past exp)"
    )
    public static let userIdClaims = Self("NOTICE_USER_ID_CLAIMS", "user_id,sub,user_name", "claims tried, in order, for the user id")
    public static let nodeId = Self("NOTICE_NODE_ID", nil, "name of this node (default: host name and process id)")
    public static let demo = Self("NOTICE_DEMO", "false", "serve the demo page at / and POST /demo/publish (needs NOTICE_DEV_TOKENS)")
    public static let logLevel = Self("NOTICE_LOG_LEVEL", "info", "trace, debug, info, notice, warning, error or critical")

    /// All keys, in the order `--help` lists them.
    public static let all: [ConfigurationKey] = [
        httpHost, httpPort, amqpURL, amqpQueue, amqpExchange, amqpPrefetch, amqpHeartbeat, pushTargets, databaseURL,
        clusterDelivery, deliverExchange,
        allowedOrigins, heartbeat, maxFrameBytes, maxSessionsPerUser, maxOutboundBytes, maxMessageBytes, httpIdleTimeout, replayLimit, retentionDays,
        publishScope, devTokens, introspectionURL, introspectionStyle, introspectionClientId, introspectionClientSecret,
        introspectionCacheSeconds, userIdClaims, nodeId, demo, logLevel,
    ]

    private init(_ name: String, _ defaultValue: String?, _ help: String) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
    }
}
