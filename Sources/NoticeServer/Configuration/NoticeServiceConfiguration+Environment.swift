import Foundation
import Logging
import NoticeCore
import NoticeStore
import RabbitMQ
import StompServer
import TokenIntrospection

extension NoticeServiceConfiguration {
    /// Reads settings from `values` (environment variable names to values, see
    /// ``ConfigurationKey``) onto the defaults; an unset variable keeps the default.
    /// Throws a ``ConfigurationError`` naming every bad setting.
    public init(values: [String: String]) throws(ConfigurationError) {
        self.init()
        var reader = Reader(values: values)
        reader.read(.httpHost, into: &httpHost)
        reader.read(.httpPort, into: &httpPort, in: 0...65_535)
        reader.read(.amqpURL, into: &amqp.url)
        if !(amqp.url.hasPrefix("amqp://")) { reader.problem(.amqpURL, "must start with amqp://") }
        reader.read(.amqpQueue, into: &queue)
        if queue.isEmpty || queue.utf8.count > 250 { reader.problem(.amqpQueue, "must be 1-250 bytes") }
        reader.read(.amqpExchange, into: &exchange)
        if exchange.isEmpty || exchange.utf8.count > 250 { reader.problem(.amqpExchange, "must be 1-250 bytes") }
        if let prefetch = reader.int(.amqpPrefetch, in: 1...65_535) { amqp.prefetch = UInt16(prefetch) }
        reader.read(.amqpHeartbeat, into: &amqp.heartbeatSeconds, in: 0...3600)
        if let targets = reader.list(.pushTargets) { pushTargets = Set(targets) }
        if let databaseURL = reader.string(.databaseURL) {
            if databaseURL.hasPrefix("sqlite:"), databaseURL.count > "sqlite:".count {
                database = .sqlite(path: String(databaseURL.dropFirst("sqlite:".count)))
            } else if databaseURL.hasPrefix("postgres://") || databaseURL.hasPrefix("postgresql://") {
                do {
                    database = .postgres(try PostgresNoticeStore.Configuration(url: databaseURL))
                } catch {
                    // The message never repeats the URL: it holds the password.
                    reader.problem(.databaseURL, "the PostgreSQL URL \(error.description)")
                }
            } else {
                reader.problem(.databaseURL, "must be sqlite:<path> or postgres://user:password@host[:port]/database")
            }
        }
        reader.read(.deliverExchange, into: &deliverExchange)
        if deliverExchange.isEmpty || deliverExchange.utf8.count > 200 { reader.problem(.deliverExchange, "must be 1-200 bytes") }
        reader.read(.eventsExchange, into: &eventsExchange)
        if eventsExchange.isEmpty || eventsExchange.utf8.count > 200 { reader.problem(.eventsExchange, "must be 1-200 bytes") }
        if let mode = reader.string(.clusterDelivery)?.lowercased() {
            switch mode {
            case "on", "true": clusterDeliveryMode = .on
            case "off", "false": clusterDeliveryMode = .off
            case "auto": clusterDeliveryMode = .auto
            default: reader.problem(.clusterDelivery, "must be on, off or auto")
            }
        }
        if let origins = reader.list(.allowedOrigins) {
            allowedOrigins = origins.contains("*") ? .any : .list(Set(origins.map { $0.lowercased() }))
        }
        reader.read(.heartbeat, into: &session.heartBeatMillis, in: 0...3_600_000)
        reader.read(.maxFrameBytes, into: &maxFrameBytes, in: 1024...16_777_216)
        reader.read(.maxSessionsPerUser, into: &maxSessionsPerUser, in: 1...100_000)
        reader.read(.maxOutboundBytes, into: &maxOutboundBytes, in: 4096...1_073_741_824)
        reader.read(.maxMessageBytes, into: &maxMessageBytes, in: 1024...16_777_216)
        if let seconds = reader.int(.httpIdleTimeout, in: 1...86_400) { httpIdleTimeout = .seconds(seconds) }
        reader.read(.replayLimit, into: &replayLimit, in: 0...10_000)
        reader.read(.retentionDays, into: &retentionDays, in: 1...36_500)
        reader.read(.publishScope, into: &publishScope)
        if publishScope.isEmpty || publishScope.contains(" ") { reader.problem(.publishScope, "must be one scope name") }
        reader.read(.adminScope, into: &adminScope)
        if adminScope.isEmpty || adminScope.contains(" ") { reader.problem(.adminScope, "must be one scope name") }
        if let tokens = reader.optional(.devTokens) {
            do {
                devTokens = try DevTokenVerifier(parsing: tokens).users
            } catch {
                reader.problem(.devTokens, "\(error.entry) is not of the form token:user")
            }
        }
        // Read (and checked) whether or not introspection is configured.
        var introspection = IntrospectionConfiguration(url: "")
        if let style = reader.string(.introspectionStyle)?.lowercased() {
            if let style = IntrospectionConfiguration.Style(rawValue: style == "rfc" ? "rfc7662" : style) {
                introspection.style = style
            } else {
                reader.problem(.introspectionStyle, "must be rfc7662 or spring")
            }
        }
        if let seconds = reader.int(.introspectionCacheSeconds, in: 0...86_400) { introspection.cacheTTL = .seconds(seconds) }
        reader.read(.introspectionMaxRate, into: &introspection.maxRequestsPerSecond, in: 1...100_000)
        if let millis = reader.int(.introspectionMaxWait, in: 0...60_000) { introspection.maxRateWait = .milliseconds(millis) }
        if let claims = reader.list(.userIdClaims) {
            if claims.isEmpty { reader.problem(.userIdClaims, "must name at least one claim") } else { introspection.userIdClaims = claims }
        }
        introspection.clientId = reader.optional(.introspectionClientId)
        introspection.clientSecret = reader.optional(.introspectionClientSecret)
        if let url = reader.optional(.introspectionURL) {
            if !(url.hasPrefix("http://") || url.hasPrefix("https://")) { reader.problem(.introspectionURL, "must be an http:// or https:// URL") }
            if devTokens != nil { reader.problem(.devTokens, "set NOTICE_DEV_TOKENS or NOTICE_INTROSPECTION_URL, not both") }
            introspection.url = url
            self.introspection = introspection
        } else if devTokens == nil {
            reader.problem(.introspectionURL, "no token check configured: set NOTICE_INTROSPECTION_URL (or NOTICE_DEV_TOKENS for development)")
        }
        if let id = reader.optional(.nodeId) { nodeId = id }
        reader.read(.demo, into: &demo)
        if demo, devTokens == nil { reader.problem(.demo, "the demo page needs NOTICE_DEV_TOKENS") }
        if let level = reader.string(.logLevel) {
            if let parsed = Logger.Level(rawValue: level.lowercased()) {
                logLevel = parsed
            } else {
                reader.problem(.logLevel, "unknown level '\(level)'")
            }
        }

        amqp.connectionName = "notice-service \(nodeId)"
        // An initializer's own assignments call no `didSet`.
        boundSockJS()

        for name in values.keys where name.hasPrefix("NOTICE_") && ConfigurationKey(name: name) == nil {
            reader.problems.append("\(name): unknown setting")
        }
        if !reader.problems.isEmpty { throw ConfigurationError(problems: reader.problems) }
    }

    /// Reads typed values of the variables that are set, collecting problems instead of
    /// stopping at the first.
    private struct Reader {
        let values: [String: String]
        var problems: [String] = []

        /// The value if set (even empty).
        func string(_ key: ConfigurationKey) -> String? {
            values[key.name]
        }

        /// The value if set and not empty.
        func optional(_ key: ConfigurationKey) -> String? {
            guard let value = values[key.name], !value.isEmpty else { return nil }
            return value
        }

        /// The comma-separated items if set (no empty ones).
        func list(_ key: ConfigurationKey) -> [String]? {
            string(key).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        }

        func read(_ key: ConfigurationKey, into value: inout String) {
            if let text = string(key) { value = text }
        }

        mutating func read(_ key: ConfigurationKey, into value: inout Int, in range: ClosedRange<Int>) {
            if let number = int(key, in: range) { value = number }
        }

        /// The integer if set and in `range`; a problem if set otherwise.
        mutating func int(_ key: ConfigurationKey, in range: ClosedRange<Int>) -> Int? {
            guard let text = string(key) else { return nil }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                problem(key, "'\(text)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
                return nil
            }
            return value
        }

        mutating func read(_ key: ConfigurationKey, into value: inout Bool) {
            guard let text = string(key) else { return }
            switch text.lowercased() {
            case "1", "true", "yes", "on": value = true
            case "0", "false", "no", "off", "": value = false
            default: problem(key, "'\(text)' is not true or false")
            }
        }

        mutating func problem(_ key: ConfigurationKey, _ message: String) {
            // Never echo a secret back: the dev token table is named, not shown.
            problems.append("\(key.name): \(message)")
        }
    }
}
