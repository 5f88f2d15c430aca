import Foundation
import NoticeServer
import Testing

/// The built `notice-service` executable's options: one for every configuration key, no other.
@Suite struct CommandLineTests {
    /// Runs the executable with `arguments`, the `NOTICE_*` variables of `environment` only;
    /// its exit status and standard output.
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = ServiceProcess.executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("NOTICE_") && $0.key != "COLUMNS" }
            .merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func serveHelpListsAnOptionForEveryKeyAndNoOther() throws {
        // Wide enough that no line wraps.
        let (status, help) = try run(["serve", "--help"], environment: ["COLUMNS": "1000"])
        #expect(status == 0)
        let lines = help.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        // Each option line begins with its names (`-h, --help`, `--set <setting>`).
        let listed = lines.filter { $0.hasPrefix("-") }.flatMap { line in
            line.split(separator: " ").prefix(2).filter { $0.hasPrefix("--") }.map { $0.trimmingCharacters(in: [","]) }
        }
        #expect(listed.sorted() == (ConfigurationKey.all.map(\.option) + ["--set", "--help"]).sorted(), "\(help)")
        for key in ConfigurationKey.all {
            // The option, then its help on the next line.
            guard let index = lines.firstIndex(where: { $0.hasPrefix("\(key.option) ") }), index + 1 < lines.count else {
                Issue.record("\(key.option) not listed")
                continue
            }
            let line = lines[index + 1]
            #expect(line.contains(key.help), "\(line)")
            #expect(line.contains(key.name), "\(line)")
            if let value = key.defaultValue, !value.isEmpty { #expect(line.contains("default \(value)"), "\(line)") }
        }
    }

    @Test func everyKeysOptionIsAccepted() throws {
        var arguments = ["check-config"]
        for key in ConfigurationKey.all {
            switch key {
            case .devTokens: arguments += [key.option, "t:1"]
            case .introspectionURL: continue  // exclusive with dev tokens
            case .nodeId: arguments += [key.option, "from-option"]
            default: arguments += [key.option, key.defaultValue ?? "x"]
            }
        }
        let (status, output) = try run(arguments, environment: ["NOTICE_NODE_ID": "from-environment"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("configuration OK (node from-option,"), "\(output)")

        let introspecting = try run(["check-config", "--introspection-url=https://auth.example/introspect", "--amqp-queue", "q"])
        #expect(introspecting.status == 0, "\(introspecting.output)")
        #expect(introspecting.output.contains("queue q)"), "\(introspecting.output)")
    }

    @Test func setWinsOverTheOptionsAndUnknownOptionsAreRefused() throws {
        let (status, output) = try run(["check-config", "--dev-tokens", "t:1", "--node-id", "a", "--set", "NOTICE_NODE_ID=b"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("(node b,"), "\(output)")

        let unknown = try run(["check-config", "--dev-tokens", "t:1", "--http-prot", "1"])
        #expect(unknown.status == 64, "\(unknown.output)")
        #expect(unknown.output.contains("unknown option '--http-prot'"), "\(unknown.output)")

        let bad = try run(["check-config", "--dev-tokens", "t:1", "--http-port", "eighty"])
        #expect(bad.status == 2, "\(bad.output)")
        #expect(bad.output.contains("NOTICE_HTTP_PORT: 'eighty' is not an integer"), "\(bad.output)")
    }
}
