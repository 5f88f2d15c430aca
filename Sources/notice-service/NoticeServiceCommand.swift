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
    @Option(
        name: .customLong("set"),
        parsing: .singleValue,
        help: ArgumentHelp("KEY=VALUE; any NOTICE_* setting (repeatable), e.g. --set NOTICE_HTTP_PORT=9090", valueName: "setting")
    )
    var settings: [String] = []

    @Option(help: .setting(.httpHost)) var httpHost: String?
    @Option(help: .setting(.httpPort)) var httpPort: String?
    @Option(help: .setting(.amqpURL)) var amqpUrl: String?
    @Option(help: .setting(.amqpQueue)) var amqpQueue: String?
    @Option(help: .setting(.amqpExchange)) var amqpExchange: String?
    @Option(help: .setting(.amqpPrefetch)) var amqpPrefetch: String?
    @Option(help: .setting(.amqpHeartbeat)) var amqpHeartbeatSeconds: String?
    @Option(help: .setting(.pushTargets)) var pushTargets: String?
    @Option(help: .setting(.databaseURL)) var dbUrl: String?
    @Option(help: .setting(.allowedOrigins)) var allowedOrigins: String?
    @Option(help: .setting(.heartbeat)) var heartbeatMs: String?
    @Option(help: .setting(.maxFrameBytes)) var maxFrameBytes: String?
    @Option(help: .setting(.maxSessionsPerUser)) var maxSessionsPerUser: String?
    @Option(help: .setting(.maxOutboundBytes)) var maxOutboundBytes: String?
    @Option(help: .setting(.replayLimit)) var replayLimit: String?
    @Option(help: .setting(.retentionDays)) var retentionDays: String?
    @Option(help: .setting(.devTokens)) var devTokens: String?
    @Option(help: .setting(.introspectionURL)) var introspectionUrl: String?
    @Option(help: .setting(.introspectionStyle)) var introspectionStyle: String?
    @Option(help: .setting(.introspectionClientId)) var introspectionClientId: String?
    @Option(help: .setting(.introspectionClientSecret)) var introspectionClientSecret: String?
    @Option(help: .setting(.introspectionCacheSeconds)) var introspectionCacheSeconds: String?
    @Option(help: .setting(.userIdClaims)) var userIdClaims: String?
    @Option(help: .setting(.nodeId)) var nodeId: String?
    @Option(help: .setting(.demo)) var demo: String?
    @Option(help: .setting(.logLevel)) var logLevel: String?

    /// The environment with these options applied.
    func values() throws -> [String: String] {
        var values = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("NOTICE_") }
        let options: [(ConfigurationKey, String?)] = [
            (.httpHost, httpHost), (.httpPort, httpPort), (.amqpURL, amqpUrl),
            (.amqpQueue, amqpQueue), (.amqpExchange, amqpExchange), (.amqpPrefetch, amqpPrefetch),
            (.amqpHeartbeat, amqpHeartbeatSeconds), (.pushTargets, pushTargets), (.databaseURL, dbUrl),
            (.allowedOrigins, allowedOrigins), (.heartbeat, heartbeatMs), (.maxFrameBytes, maxFrameBytes),
            (.maxSessionsPerUser, maxSessionsPerUser), (.maxOutboundBytes, maxOutboundBytes),
            (.replayLimit, replayLimit), (.retentionDays, retentionDays), (.devTokens, devTokens),
            (.introspectionURL, introspectionUrl), (.introspectionStyle, introspectionStyle),
            (.introspectionClientId, introspectionClientId), (.introspectionClientSecret, introspectionClientSecret),
            (.introspectionCacheSeconds, introspectionCacheSeconds), (.userIdClaims, userIdClaims),
            (.nodeId, nodeId), (.demo, demo), (.logLevel, logLevel),
        ]
        for (key, value) in options { if let value { values[key.name] = value } }
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

extension ArgumentHelp {
    /// An option's help from the configuration table: meaning, variable and default.
    static func setting(_ key: ConfigurationKey) -> ArgumentHelp {
        ArgumentHelp("\(key.help) [\(key.name)\(key.defaultValue.map { $0.isEmpty ? "" : ", default \($0)" } ?? "")]")
    }
}
