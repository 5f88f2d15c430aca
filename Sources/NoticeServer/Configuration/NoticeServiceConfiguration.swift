import Foundation
public import Logging
import NoticeCore
public import NoticeStore
public import RabbitMQ
public import SockJS
public import StompServer
public import TokenIntrospection

/// The whole service's settings, read from the environment (and command-line options,
/// which override it) in one place, with every problem reported at once.
public struct NoticeServiceConfiguration: Sendable {
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

    public var httpHost: String
    public var httpPort: Int
    public var amqp: AMQPConfiguration
    public var queue: String
    public var exchange: String
    public var pushTargets: Set<String>
    public var database: Database
    public var allowedOrigins: AllowedOrigins
    public var session: StompSession.Configuration
    public var maxFrameBytes: Int
    public var maxSessionsPerUser: Int
    public var maxOutboundBytes: Int
    /// Largest AMQP message body ingested (`NOTICE_MAX_MESSAGE_BYTES`); larger ones are dead-lettered.
    public var maxMessageBytes: Int
    /// How long an HTTP connection may sit without a request in progress (`NOTICE_HTTP_IDLE_TIMEOUT_SECONDS`).
    public var httpIdleTimeout: Duration
    public var replayLimit: Int
    public var retentionDays: Int
    /// Whether notices cross nodes through ``deliverExchange`` (SPEC §8).
    public var clusterDelivery: Bool
    public var deliverExchange: String
    /// The scope a token needs for `POST /api/notices`.
    public var publishScope: String
    public var devTokens: [String: String]?
    /// Token introspection (SPEC §5); exactly one of this and ``devTokens`` is set.
    public var introspection: IntrospectionConfiguration?
    public var nodeId: String
    public var demo: Bool
    public var logLevel: Logger.Level
    /// A connection that has not sent CONNECT within this time is closed.
    public var connectTimeout: Duration = .seconds(10)
    /// SockJS timers and bounds (sockjs-node's defaults; bodies bounded by the frame limit).
    public var sockJS = SockJSConfiguration()

    /// The dead-letter queue: `<queue>.dead`.
    public var deadLetterQueue: String { queue + ".dead" }

    /// Reads settings from `values` (environment variable names to values).
    /// Throws a ``ConfigurationError`` naming every bad setting.
    public init(values: [String: String]) throws(ConfigurationError) {
        var reader = Reader(values: values)
        httpHost = reader.string(.httpHost)
        httpPort = reader.int(.httpPort, in: 0...65_535)
        let url = reader.string(.amqpURL)
        if !(url.hasPrefix("amqp://")) { reader.problem(.amqpURL, "must start with amqp://") }
        queue = reader.string(.amqpQueue)
        if queue.isEmpty || queue.utf8.count > 250 { reader.problem(.amqpQueue, "must be 1-250 bytes") }
        exchange = reader.string(.amqpExchange)
        if exchange.isEmpty || exchange.utf8.count > 250 { reader.problem(.amqpExchange, "must be 1-250 bytes") }
        let prefetch = reader.int(.amqpPrefetch, in: 1...65_535)
        let amqpHeartbeat = reader.int(.amqpHeartbeat, in: 0...3600)
        pushTargets = Set(reader.list(.pushTargets))
        let databaseURL = reader.string(.databaseURL)
        if databaseURL.hasPrefix("sqlite:"), databaseURL.count > "sqlite:".count {
            database = .sqlite(path: String(databaseURL.dropFirst("sqlite:".count)))
        } else if databaseURL.hasPrefix("postgres://") || databaseURL.hasPrefix("postgresql://") {
            do {
                database = .postgres(try PostgresNoticeStore.Configuration(url: databaseURL))
            } catch {
                database = .sqlite(path: "data/notice.sqlite")
                // The message never repeats the URL: it holds the password.
                reader.problem(.databaseURL, "the PostgreSQL URL \(error.description)")
            }
        } else {
            database = .sqlite(path: "data/notice.sqlite")
            reader.problem(.databaseURL, "must be sqlite:<path> or postgres://user:password@host[:port]/database")
        }
        deliverExchange = reader.string(.deliverExchange)
        if deliverExchange.isEmpty || deliverExchange.utf8.count > 200 { reader.problem(.deliverExchange, "must be 1-200 bytes") }
        switch reader.string(.clusterDelivery).lowercased() {
        case "on", "true": clusterDelivery = true
        case "off", "false": clusterDelivery = false
        case "auto":
            // Several nodes need a shared store; SQLite is one node's.
            if case .sqlite = database { clusterDelivery = false } else { clusterDelivery = true }
        default:
            clusterDelivery = false
            reader.problem(.clusterDelivery, "must be on, off or auto")
        }
        let origins = reader.list(.allowedOrigins)
        allowedOrigins = origins.contains("*") ? .any : .list(Set(origins.map { $0.lowercased() }))
        let heartbeat = reader.int(.heartbeat, in: 0...3_600_000)
        maxFrameBytes = reader.int(.maxFrameBytes, in: 1024...16_777_216)
        maxSessionsPerUser = reader.int(.maxSessionsPerUser, in: 1...100_000)
        maxOutboundBytes = reader.int(.maxOutboundBytes, in: 4096...1_073_741_824)
        maxMessageBytes = reader.int(.maxMessageBytes, in: 1024...16_777_216)
        httpIdleTimeout = .seconds(reader.int(.httpIdleTimeout, in: 1...86_400))
        replayLimit = reader.int(.replayLimit, in: 0...10_000)
        retentionDays = reader.int(.retentionDays, in: 1...36_500)
        publishScope = reader.string(.publishScope)
        if publishScope.isEmpty || publishScope.contains(" ") { reader.problem(.publishScope, "must be one scope name") }
        if let tokens = reader.optional(.devTokens) {
            do {
                devTokens = try DevTokenVerifier(parsing: tokens).users
            } catch {
                devTokens = nil
                reader.problem(.devTokens, "\(error.entry) is not of the form token:user")
            }
        } else {
            devTokens = nil
        }
        let styleText = reader.string(.introspectionStyle).lowercased()
        let style = IntrospectionConfiguration.Style(rawValue: styleText == "rfc" ? "rfc7662" : styleText)
        if style == nil { reader.problem(.introspectionStyle, "must be rfc7662 or spring") }
        let cacheSeconds = reader.int(.introspectionCacheSeconds, in: 0...86_400)
        let claims = reader.list(.userIdClaims)
        if claims.isEmpty { reader.problem(.userIdClaims, "must name at least one claim") }
        if let url = reader.optional(.introspectionURL) {
            if !(url.hasPrefix("http://") || url.hasPrefix("https://")) { reader.problem(.introspectionURL, "must be an http:// or https:// URL") }
            if devTokens != nil { reader.problem(.devTokens, "set NOTICE_DEV_TOKENS or NOTICE_INTROSPECTION_URL, not both") }
            introspection = IntrospectionConfiguration(
                url: url,
                style: style ?? .rfc7662,
                clientId: reader.optional(.introspectionClientId),
                clientSecret: reader.optional(.introspectionClientSecret),
                userIdClaims: claims,
                cacheTTL: .seconds(cacheSeconds)
            )
        } else {
            introspection = nil
            if devTokens == nil {
                reader.problem(.introspectionURL, "no token check configured: set NOTICE_INTROSPECTION_URL (or NOTICE_DEV_TOKENS for development)")
            }
        }
        nodeId = reader.optional(.nodeId) ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        demo = reader.bool(.demo)
        if demo, devTokens == nil { reader.problem(.demo, "the demo page needs NOTICE_DEV_TOKENS") }
        let level = reader.string(.logLevel)
        logLevel = Logger.Level(rawValue: level.lowercased()) ?? .info
        if Logger.Level(rawValue: level.lowercased()) == nil { reader.problem(.logLevel, "unknown level '\(level)'") }

        amqp = AMQPConfiguration(
            url: url,
            heartbeatSeconds: amqpHeartbeat,
            prefetch: UInt16(clamping: prefetch),
            connectionName: "notice-service \(nodeId)"
        )
        session = StompSession.Configuration(heartBeatMillis: heartbeat, maxSubscriptions: 32)
        sockJS.maxMessageBytes = 2 * maxFrameBytes + 1024
        sockJS.maxPendingInboundBytes = 4 * maxFrameBytes
        sockJS.maxQueuedBytes = maxOutboundBytes

        for name in values.keys where name.hasPrefix("NOTICE_") && !ConfigurationKey.all.contains(where: { $0.name == name }) {
            reader.problems.append("\(name): unknown setting")
        }
        if !reader.problems.isEmpty { throw ConfigurationError(problems: reader.problems) }
    }

    /// Reads typed values, collecting problems instead of stopping at the first.
    private struct Reader {
        let values: [String: String]
        var problems: [String] = []

        func optional(_ key: ConfigurationKey) -> String? {
            guard let value = values[key.name], !value.isEmpty else { return nil }
            return value
        }

        func string(_ key: ConfigurationKey) -> String {
            values[key.name] ?? key.defaultValue ?? ""
        }

        func list(_ key: ConfigurationKey) -> [String] {
            string(key).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        mutating func int(_ key: ConfigurationKey, in range: ClosedRange<Int>) -> Int {
            let text = string(key)
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                problem(key, "'\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
                return Int(key.defaultValue ?? "") ?? range.lowerBound
            }
            return value
        }

        mutating func bool(_ key: ConfigurationKey) -> Bool {
            switch string(key).lowercased() {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off", "": return false
            default:
                problem(key, "'\(string(key))' is not true or false")
                return false
            }
        }

        mutating func problem(_ key: ConfigurationKey, _ message: String) {
            // Never echo a secret back: the dev token table is named, not shown.
            problems.append("\(key.name): \(message)")
        }
    }
}

/// Every problem found in the settings.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]

    public var description: String {
        "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
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
