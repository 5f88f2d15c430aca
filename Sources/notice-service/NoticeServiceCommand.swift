import ArgumentParser
import Foundation
import Logging
import Metrics
import NoticeServer
import Prometheus

/// `notice-service`: `serve` (default), `check-config`, `publish`.
@main
struct NoticeServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notice-service",
        abstract: "Pushes notices from RabbitMQ to browsers over STOMP.",
        subcommands: [Serve.self, CheckConfig.self, Publish.self],
        defaultSubcommand: Serve.self
    )
}

/// Command-line options mirroring every `NOTICE_*` environment variable; an option wins
/// over the variable.
struct SettingOptions: ParsableArguments {
    @Option(name: .customLong("set"), parsing: .singleValue, help: ArgumentHelp("KEY=VALUE; any NOTICE_* setting (repeatable), e.g. --set NOTICE_HTTP_PORT=9090", valueName: "setting"))
    var settings: [String] = []

    @Option(help: "NOTICE_HTTP_HOST") var httpHost: String?
    @Option(help: "NOTICE_HTTP_PORT") var httpPort: String?
    @Option(help: "NOTICE_AMQP_URL") var amqpUrl: String?
    @Option(help: "NOTICE_AMQP_QUEUE") var amqpQueue: String?
    @Option(help: "NOTICE_AMQP_EXCHANGE") var amqpExchange: String?
    @Option(help: "NOTICE_AMQP_PREFETCH") var amqpPrefetch: String?
    @Option(help: "NOTICE_AMQP_HEARTBEAT_SECONDS") var amqpHeartbeatSeconds: String?
    @Option(help: "NOTICE_PUSH_TARGETS") var pushTargets: String?
    @Option(help: "NOTICE_DB_URL") var dbUrl: String?
    @Option(help: "NOTICE_ALLOWED_ORIGINS") var allowedOrigins: String?
    @Option(help: "NOTICE_HEARTBEAT_MS") var heartbeatMs: String?
    @Option(help: "NOTICE_MAX_FRAME_BYTES") var maxFrameBytes: String?
    @Option(help: "NOTICE_MAX_SESSIONS_PER_USER") var maxSessionsPerUser: String?
    @Option(help: "NOTICE_MAX_OUTBOUND_BYTES") var maxOutboundBytes: String?
    @Option(help: "NOTICE_REPLAY_LIMIT") var replayLimit: String?
    @Option(help: "NOTICE_RETENTION_DAYS") var retentionDays: String?
    @Option(help: "NOTICE_DEV_TOKENS") var devTokens: String?
    @Option(help: "NOTICE_INTROSPECTION_URL") var introspectionUrl: String?
    @Option(help: "NOTICE_INTROSPECTION_STYLE") var introspectionStyle: String?
    @Option(help: "NOTICE_INTROSPECTION_CLIENT_ID") var introspectionClientId: String?
    @Option(help: "NOTICE_INTROSPECTION_CLIENT_SECRET") var introspectionClientSecret: String?
    @Option(help: "NOTICE_INTROSPECTION_CACHE_SECONDS") var introspectionCacheSeconds: String?
    @Option(help: "NOTICE_USER_ID_CLAIMS") var userIdClaims: String?
    @Option(help: "NOTICE_NODE_ID") var nodeId: String?
    @Option(help: "NOTICE_DEMO") var demo: String?
    @Option(help: "NOTICE_LOG_LEVEL") var logLevel: String?

    /// The environment with these options applied.
    func values() throws -> [String: String] {
        var values = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("NOTICE_") }
        let options: [(String, String?)] = [
            ("NOTICE_HTTP_HOST", httpHost), ("NOTICE_HTTP_PORT", httpPort), ("NOTICE_AMQP_URL", amqpUrl),
            ("NOTICE_AMQP_QUEUE", amqpQueue), ("NOTICE_AMQP_EXCHANGE", amqpExchange), ("NOTICE_AMQP_PREFETCH", amqpPrefetch),
            ("NOTICE_AMQP_HEARTBEAT_SECONDS", amqpHeartbeatSeconds), ("NOTICE_PUSH_TARGETS", pushTargets), ("NOTICE_DB_URL", dbUrl),
            ("NOTICE_ALLOWED_ORIGINS", allowedOrigins), ("NOTICE_HEARTBEAT_MS", heartbeatMs), ("NOTICE_MAX_FRAME_BYTES", maxFrameBytes),
            ("NOTICE_MAX_SESSIONS_PER_USER", maxSessionsPerUser), ("NOTICE_MAX_OUTBOUND_BYTES", maxOutboundBytes),
            ("NOTICE_REPLAY_LIMIT", replayLimit), ("NOTICE_RETENTION_DAYS", retentionDays), ("NOTICE_DEV_TOKENS", devTokens),
            ("NOTICE_INTROSPECTION_URL", introspectionUrl), ("NOTICE_INTROSPECTION_STYLE", introspectionStyle),
            ("NOTICE_INTROSPECTION_CLIENT_ID", introspectionClientId), ("NOTICE_INTROSPECTION_CLIENT_SECRET", introspectionClientSecret),
            ("NOTICE_INTROSPECTION_CACHE_SECONDS", introspectionCacheSeconds), ("NOTICE_USER_ID_CLAIMS", userIdClaims),
            ("NOTICE_NODE_ID", nodeId), ("NOTICE_DEMO", demo), ("NOTICE_LOG_LEVEL", logLevel),
        ]
        for (key, value) in options { if let value { values[key] = value } }
        for setting in settings {
            guard let equals = setting.firstIndex(of: "=") else { throw ValidationError("--set takes KEY=VALUE") }
            values[String(setting[..<equals])] = String(setting[setting.index(after: equals)...])
        }
        return values
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the service (the default).")

    @OptionGroup var options: SettingOptions

    func run() async throws {
        let configuration: NoticeServiceConfiguration
        do {
            configuration = try NoticeServiceConfiguration(values: options.values())
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        // One registry for the service's own metrics and any a library reports.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory.notice(registry: registry))
        var logger = Logger(label: "notice-service")
        logger[metadataKey: "node"] = "\(configuration.nodeId)"
        let service = try await buildService(configuration, logger: logger, signals: [.sigterm, .sigint], metrics: registry)
        try await service.run()
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the settings and list every problem."
    )

    @OptionGroup var options: SettingOptions

    func run() async throws {
        do {
            let configuration = try NoticeServiceConfiguration(values: options.values())
            print("configuration OK (node \(configuration.nodeId), store \(configuration.database), queue \(configuration.queue))")
        } catch let error as ConfigurationError {
            print(error.description)
            throw ExitCode(2)
        }
    }
}
