import ArgumentParser
import Foundation
import Logging
import Metrics
import NoticeServer
import Prometheus
import ServiceLifecycle
import UnixSignals

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

/// Command-line settings: `--<option> VALUE` for every `NOTICE_*` environment variable (the
/// options of ``ConfigurationKey``, collected as unrecognised arguments: argument-parser
/// declares options only statically), and `--set NAME=VALUE`. An option wins over the
/// variable, `--set` over both.
struct SettingOptions: ParsableArguments {
    @Option(
        name: .customLong("set"),
        parsing: .singleValue,
        help: ArgumentHelp("KEY=VALUE; any NOTICE_* setting (repeatable), e.g. --set NOTICE_HTTP_PORT=9090", valueName: "setting")
    )
    var settings: [String] = []

    @Argument(
        parsing: .allUnrecognized,
        help: ArgumentHelp("--<option> <value> for any setting:", discussion: SettingOptions.discussion, valueName: "setting-options")
    )
    var keyOptions: [String] = []

    /// Every key's option, then its meaning, variable and default.
    static let discussion = ConfigurationKey.optionsHelp.map { "\($0.option)\n    \($0.help)" }.joined(separator: "\n")

    func validate() throws {
        do {
            _ = try ConfigurationKey.settings(fromArguments: keyOptions)
        } catch {
            throw ValidationError(error.problems.joined(separator: "; "))
        }
        if settings.contains(where: { !$0.contains("=") }) { throw ValidationError("--set takes KEY=VALUE") }
    }

    /// The environment with these options applied.
    func values() throws -> [String: String] {
        var values = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("NOTICE_") }
        values.merge(try ConfigurationKey.settings(fromArguments: keyOptions)) { $1 }
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
