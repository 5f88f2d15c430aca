import Testing

@testable import NoticeServer

@Suite struct ConfigurationTests {
    @Test func defaultsFollowTheSpec() throws {
        let configuration = try NoticeServiceConfiguration(values: ["NOTICE_DEV_TOKENS": "t:1"])
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 8080)
        #expect(configuration.queue == "notice.direct.queue")
        #expect(configuration.deadLetterQueue == "notice.direct.queue.dead")
        #expect(configuration.exchange == "notice.direct")
        #expect(configuration.amqp.prefetch == 256)
        #expect(configuration.pushTargets == ["SYS"])
        #expect(configuration.database == .sqlite(path: "data/notice.sqlite"))
        #expect(configuration.session.heartBeatMillis == 10_000)
        #expect(configuration.maxFrameBytes == 65_536)
        #expect(configuration.maxSessionsPerUser == 32)
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
