import Foundation
import NoticeStore
import RabbitMQ
import SockJS
import StompServer
import Testing
import TokenIntrospection

@testable import NoticeServer

@Suite struct ConfigurationTests {
    @Test func defaultsFollowTheSpec() {
        let configuration = NoticeServiceConfiguration()
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 8080)
        #expect(configuration.queue == "notice.direct.queue")
        #expect(configuration.deadLetterQueue == "notice.direct.queue.dead")
        #expect(configuration.exchange == "notice.direct")
        #expect(configuration.amqp.prefetch == 256)
        #expect(configuration.pushTargets == ["SYS"])
        #expect(configuration.database == .sqlite(path: "data/notice.sqlite"))
        #expect(configuration.clusterDelivery == false)
        #expect(configuration.session.heartBeatMillis == 10_000)
        #expect(configuration.maxFrameBytes == 65_536)
        #expect(configuration.maxSessionsPerUser == 32)
        #expect(configuration.sockJS.maxMessageBytes == 2 * 65_536 + 1024)
    }

    /// The variables and their defaults as deployments know them: a change here changes
    /// every deployment (and docs/configuration.md).
    static let documented: [String: String?] = [
        "NOTICE_HTTP_HOST": "127.0.0.1", "NOTICE_HTTP_PORT": "8080",
        "NOTICE_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/", "NOTICE_AMQP_QUEUE": "notice.direct.queue",
        "NOTICE_AMQP_EXCHANGE": "notice.direct", "NOTICE_AMQP_PREFETCH": "256", "NOTICE_AMQP_HEARTBEAT_SECONDS": "30",
        "NOTICE_PUSH_TARGETS": "SYS", "NOTICE_DB_URL": "sqlite:data/notice.sqlite", "NOTICE_CLUSTER_DELIVERY": "auto",
        "NOTICE_AMQP_DELIVER_EXCHANGE": "notice.deliver", "NOTICE_ALLOWED_ORIGINS": "", "NOTICE_HEARTBEAT_MS": "10000",
        "NOTICE_MAX_FRAME_BYTES": "65536", "NOTICE_MAX_SESSIONS_PER_USER": "32", "NOTICE_MAX_OUTBOUND_BYTES": "1048576",
        "NOTICE_MAX_MESSAGE_BYTES": "262144", "NOTICE_HTTP_IDLE_TIMEOUT_SECONDS": "60", "NOTICE_REPLAY_LIMIT": "100",
        "NOTICE_RETENTION_DAYS": "90", "NOTICE_PUBLISH_SCOPE": "notice:publish", "NOTICE_ADMIN_SCOPE": "notice:admin",
        "NOTICE_AMQP_EVENTS_EXCHANGE": "notice.events", "NOTICE_DEV_TOKENS": nil,
        "NOTICE_INTROSPECTION_URL": nil, "NOTICE_INTROSPECTION_STYLE": "rfc7662", "NOTICE_INTROSPECTION_CLIENT_ID": nil,
        "NOTICE_INTROSPECTION_CLIENT_SECRET": nil, "NOTICE_INTROSPECTION_CACHE_SECONDS": "60",
        "NOTICE_INTROSPECTION_MAX_RATE": "500", "NOTICE_INTROSPECTION_MAX_WAIT_MS": "5000",
        "NOTICE_USER_ID_CLAIMS": "user_id,sub,user_name", "NOTICE_NODE_ID": nil, "NOTICE_DEMO": "false", "NOTICE_LOG_LEVEL": "info",
    ]

    @Test func theVariablesAndTheirDefaultsStay() {
        #expect(ConfigurationKey.all.count == Self.documented.count)
        #expect(Dictionary(uniqueKeysWithValues: ConfigurationKey.all.map { ($0.name, $0.defaultValue) }) == Self.documented)
    }

    /// Reading nothing gives the structs' defaults: the reader has no defaults of its own.
    @Test func theReaderStartsFromTheComponentsDefaults() throws {
        var expected = NoticeServiceConfiguration()
        expected.devTokens = ["t": "1"]
        expected.nodeId = "unit"
        expected.amqp.connectionName = "notice-service unit"
        #expect(try NoticeServiceConfiguration(values: ["NOTICE_DEV_TOKENS": "t:1", "NOTICE_NODE_ID": "unit"]) == expected)

        var introspecting = NoticeServiceConfiguration()
        introspecting.introspection = IntrospectionConfiguration(url: "https://auth.example/introspect")
        introspecting.nodeId = "unit"
        introspecting.amqp.connectionName = "notice-service unit"
        let read = try NoticeServiceConfiguration(values: ["NOTICE_INTROSPECTION_URL": "https://auth.example/introspect", "NOTICE_NODE_ID": "unit"])
        #expect(read == introspecting)
    }

    /// A configuration built in code and one read from the environment bound SockJS alike.
    @Test func theFrameAndQueueLimitsBoundSockJSHoweverTheyAreSet() throws {
        var built = NoticeServiceConfiguration()
        built.devTokens = ["t": "1"]
        built.nodeId = "unit"
        built.amqp.connectionName = "notice-service unit"
        built.maxFrameBytes = 4096
        built.maxOutboundBytes = 262_144
        #expect(built.sockJS.maxMessageBytes == 2 * 4096 + 1024)
        #expect(built.sockJS.maxPendingInboundBytes == 4 * 4096)
        #expect(built.sockJS.maxQueuedBytes == 262_144)
        let read = try NoticeServiceConfiguration(values: [
            "NOTICE_DEV_TOKENS": "t:1", "NOTICE_NODE_ID": "unit", "NOTICE_MAX_FRAME_BYTES": "4096", "NOTICE_MAX_OUTBOUND_BYTES": "262144",
        ])
        #expect(read == built)
    }

    /// Each key's default text, set explicitly, reads back as its component's default.
    @Test(arguments: ConfigurationKey.all.filter { $0.defaultValue != nil })
    func everyDefaultAgreesWithItsComponent(key: ConfigurationKey) throws {
        let bases = [
            ["NOTICE_DEV_TOKENS": "t:1", "NOTICE_NODE_ID": "unit"],
            ["NOTICE_INTROSPECTION_URL": "https://auth.example/introspect", "NOTICE_NODE_ID": "unit"],
        ]
        for base in bases {
            var values = base
            values[key.name] = key.defaultValue
            #expect(try NoticeServiceConfiguration(values: values) == NoticeServiceConfiguration(values: base), "\(key.name)")
        }
    }

    @Test func everyKeyHasItsOwnOption() throws {
        let options = ConfigurationKey.all.map(\.option)
        #expect(Set(options).count == options.count)
        for key in ConfigurationKey.all {
            #expect(ConfigurationKey(option: key.option) == key)
            #expect(ConfigurationKey(name: key.name) == key)
        }
        #expect(ConfigurationKey(option: "--set") == nil)
        #expect(ConfigurationKey(option: "--help") == nil)

        let arguments = ConfigurationKey.all.flatMap { [$0.option, "value of \($0.name)"] }
        let settings = try ConfigurationKey.settings(fromArguments: arguments)
        #expect(settings == Dictionary(uniqueKeysWithValues: ConfigurationKey.all.map { ($0.name, "value of \($0.name)") }))
    }

    @Test func optionsTakeTheirValueAfterASpaceOrAnEqualsSign() throws {
        #expect(
            try ConfigurationKey.settings(fromArguments: ["--http-port", "9090", "--allowed-origins=", "--db-url=sqlite:a=b"])
                == ["NOTICE_HTTP_PORT": "9090", "NOTICE_ALLOWED_ORIGINS": "", "NOTICE_DB_URL": "sqlite:a=b"]
        )
        do {
            _ = try ConfigurationKey.settings(fromArguments: ["--http-prot", "1", "stray", "--demo", "--log-level"])
            Issue.record("accepted unknown options")
        } catch {
            #expect(
                error.problems == [
                    "unknown option '--http-prot'", "unexpected argument '1'", "unexpected argument 'stray'", "missing value for '--demo'",
                    "missing value for '--log-level'",
                ]
            )
        }
    }

    @Test func helpListsEveryKeyWithItsDefault() {
        let help = ConfigurationKey.optionsHelp
        #expect(help.map(\.option) == ConfigurationKey.all.map { "\($0.option) <value>" })
        #expect(help[1].help == "port of the HTTP/WebSocket listener (0: any free port) [NOTICE_HTTP_PORT, default 8080]")
        for (line, key) in zip(help, ConfigurationKey.all) {
            #expect(line.help.hasPrefix(key.help))
            #expect(line.help.contains(key.name))
            if let value = key.defaultValue, !value.isEmpty { #expect(line.help.hasSuffix(", default \(value)]")) }
        }
    }

    /// docs/configuration.md names every key once, with the key's default.
    @Test func theDocumentedTableMatchesTheKeys() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/configuration.md")
        let rows = try String(contentsOf: docs, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("| `NOTICE_") }
        var documented: [String: String] = [:]
        for row in rows {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            documented[cells[0].trimmingCharacters(in: ["`"])] = cells[1]
        }
        #expect(Set(documented.keys) == Set(ConfigurationKey.all.map(\.name)))
        for key in ConfigurationKey.all {
            switch key.defaultValue {
            case nil: #expect(documented[key.name] != nil)
            case "": #expect(documented[key.name] == "empty", "\(key.name)")
            case let value?: #expect(documented[key.name] == "`\(value)`", "\(key.name)")
            }
        }
    }

    @Test func everyProblemIsReportedAtOnce() {
        let values = [
            "NOTICE_HTTP_PORT": "eighty",
            "NOTICE_AMQP_PREFETCH": "0",
            "NOTICE_DB_URL": "mysql://x",
            "NOTICE_DEV_TOKENS": "secret-no-user",
            "NOTICE_LOG_LEVEL": "loud",
            "NOTICE_HTTP_PROT": "1",
        ]
        do {
            _ = try NoticeServiceConfiguration(values: values)
            Issue.record("accepted a bad configuration")
        } catch {
            let text = error.description
            for key in [
                "NOTICE_HTTP_PORT", "NOTICE_AMQP_PREFETCH", "NOTICE_DB_URL", "NOTICE_DEV_TOKENS", "NOTICE_LOG_LEVEL",
                "NOTICE_HTTP_PROT: unknown setting",
            ] {
                #expect(text.contains(key), "\(key) missing from: \(text)")
            }
            #expect(!text.contains("secret-no-user"))
        }
    }

    @Test func refusesToStartWithoutATokenCheck() {
        #expect(throws: ConfigurationError.self) { try NoticeServiceConfiguration(values: [:]) }
    }

    @Test func optionsNameTheirVariables() {
        #expect(ConfigurationKey.databaseURL.option == "--db-url")
        #expect(ConfigurationKey.httpPort.option == "--http-port")
        #expect(ConfigurationKey.maxSessionsPerUser.option == "--max-sessions-per-user")
    }

    @Test func descriptionsHideSecrets() throws {
        let configuration = try NoticeServiceConfiguration(values: [
            "NOTICE_DEV_TOKENS": "very-secret:1",
            "NOTICE_AMQP_URL": "amqp://user:hunter2@broker:5672/",
        ])
        for text in ["\(configuration)", String(reflecting: configuration)] {
            #expect(!text.contains("very-secret"))
            #expect(!text.contains("hunter2"))
        }
    }

    func database(_ url: String) throws(ConfigurationError) -> NoticeServiceConfiguration.Database {
        try NoticeServiceConfiguration(values: ["NOTICE_DEV_TOKENS": "t:1", "NOTICE_DB_URL": url]).database
    }

    @Test func postgresURLsAreParsed() throws {
        let full = try database("postgres://notice:p%40ss%3Aword@db.example:6543/notices?sslmode=require")
        guard case .postgres(let postgres) = full else { throw TestFailure("not postgres: \(full)") }
        #expect(postgres.host == "db.example")
        #expect(postgres.port == 6543)
        #expect(postgres.username == "notice")
        #expect(postgres.password == "p@ss:word")
        #expect(postgres.database == "notices")
        #expect(postgres.tls == .require)

        let short = try database("postgresql://app@127.0.0.1/app_db")
        #expect(
            try database("postgres://u:p%40@[::1]:5433/d") == .postgres(.init(host: "::1", port: 5433, username: "u", password: "p@", database: "d"))
        )
        #expect(try database("postgres://u:@h/d") == .postgres(.init(host: "h", username: "u", password: "", database: "d")))
        guard case .postgres(let defaults) = short else { throw TestFailure("not postgres: \(short)") }
        #expect(defaults.port == 5432)
        #expect(defaults.password == nil)
        #expect(defaults.tls == .disable)
        #expect(try database("postgres://u:p@h/d?sslmode=disable") == .postgres(.init(host: "h", username: "u", password: "p", database: "d")))
        #expect(
            try database("postgres://u:p@h/d?sslmode=verify-full")
                == .postgres(.init(host: "h", username: "u", password: "p", database: "d", tls: .verifyFull))
        )
    }

    @Test(arguments: [
        ("postgres://u:hunter2@/db", "names no host"),
        ("postgres://hunter2@h", "must name exactly one database"),
        ("postgres://u:hunter2@h/", "must name exactly one database"),
        ("postgres://u:hunter2@h/a/b", "must name exactly one database"),
        ("postgres://:hunter2@h/db", "names no user"),
        ("postgres://u:hunter2@h:99999/db", "port must be 1-65535"),
        ("postgres://u:hunter2@h:54x/db", "port must be 1-65535"),
        ("postgres://u:hunter2@h:0/db", "port must be 1-65535"),
        ("postgres://u:hunter2@h/db?sslmode=prefer", "sslmode must be one of disable, require, verify-full"),
        ("postgres://u:hunter2@h/db?connect_timeout=3", "unknown parameter 'connect_timeout'"),
        ("postgres://u:hunter 2@h/db", "password with characters that must be percent-encoded"),
        ("postgres://u:hunter2/x@h/db", "must name exactly one database"),
        ("postgres://u:hunter%2@h/db", "password with characters that must be percent-encoded"),
        ("postgres://u:hunter2@h/d b", "database name with characters"),
        ("postgres://u:hunter2@h/db?sslmode", "sslmode must be one of"),
        ("mysql://u:hunter2@h/db", "must be sqlite:<path> or postgres://"),
    ])
    func malformedDatabaseURLsAreRefusedWithoutShowingThePassword(url: String, reason: String) {
        do {
            _ = try database(url)
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.description.contains("NOTICE_DB_URL"))
            #expect(error.description.contains(reason), "\(error.description)")
            #expect(!error.description.contains("hunter"))
        }
    }

    @Test func postgresDescriptionsHideThePassword() throws {
        let configuration = try NoticeServiceConfiguration(values: [
            "NOTICE_DEV_TOKENS": "t:1",
            "NOTICE_DB_URL": "postgres://notice:hunter2@db:5432/notice",
        ])
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in ["\(configuration)", String(reflecting: configuration), "\(configuration.database)", dumped] {
            #expect(!text.contains("hunter2"))
        }
        #expect("\(configuration)".contains("postgres://notice:***@db:5432/notice"))
    }
}

/// The tests' two ways of configuring a server (values in process, variables for a process of its own) agree.
@Suite struct TestServerConfigurationTests {
    @Test func theTestSettingsReadBackAsTheTestConfiguration() throws {
        let settings = TestServer.settings(queue: "test.same", databasePath: "/tmp/same.sqlite")
        let read = try NoticeServiceConfiguration(values: settings)
        var built = TestServer.configuration(queue: "test.same", databasePath: "/tmp/same.sqlite")
        built.nodeId = read.nodeId
        built.amqp.connectionName = read.amqp.connectionName
        #expect(read == built)
    }
}
