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
            for key in ["NOTICE_HTTP_PORT", "NOTICE_AMQP_PREFETCH", "NOTICE_DB_URL", "NOTICE_DEV_TOKENS", "NOTICE_LOG_LEVEL", "NOTICE_HTTP_PROT: unknown setting"] {
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
}
