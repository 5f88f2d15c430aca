import Foundation
import Logging
import NoticeCore
import NoticeTesting
import PostgresNIO
import Testing

@testable import NoticeStore

/// PostgreSQL-only behaviour: several nodes on one database, and a server that is down or silent.
@Suite struct PostgresNoticeStoreTests {
    @Test func storesMigratingConcurrentlyApplyEachMigrationOnce() async throws {
        let database = try await PostgresTestDatabase.create()
        let stores = (0..<4).map { _ in RunningPostgresStore(configuration: database.configuration) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in stores { group.addTask { try await store.migrate() } }
            try await group.waitForAll()
        }
        try await stores[0].migrate()
        #expect(try await stores[1].insert([NoticeRow(noticeId: 1, recipient: "a", payload: "{}", createdAt: 1)]).count == 1)
        #expect(try await stores[2].count() == 1)

        let reader = RunningPostgresStore(configuration: database.configuration)
        let versions = try await reader.store.perform("test") { connection, logger in
            var versions: [Int32] = []
            for try await version in try await connection.query("SELECT version FROM notice_schema_migrations ORDER BY version", logger: logger)
                .decode(Int32.self)
            {
                versions.append(version)
            }
            return versions
        }
        #expect(versions == PostgresNoticeStore.migrations.map(\.version))
        try await reader.close()
        for store in stores { try await store.close() }
        try await database.drop()
    }

    @Test func migrateBringsAPoolOfItsOwnSoTheStoreCanMigrateBeforeItRuns() async throws {
        let database = try await PostgresTestDatabase.create()
        // Never run: the service migrates before its ServiceGroup starts the store's pool.
        let idle = PostgresNoticeStore(configuration: database.configuration)
        try await idle.migrate()
        let store = RunningPostgresStore(configuration: database.configuration)
        #expect(try await store.insert([NoticeRow(noticeId: 1, recipient: "a", payload: "{}", createdAt: 1)]).count == 1)
        #expect(try await store.count() == 1)
        try await store.close()
        try await database.drop()
    }

    @Test func theSchemaHasTheBodyOnceTablesAndTheirPartialIndexes() async throws {
        let database = try await PostgresTestDatabase.create()
        let store = RunningPostgresStore(configuration: database.configuration)
        try await store.migrate()
        let indexes = try await store.store.perform("test") { connection, logger in
            var indexes: [String: String] = [:]
            for try await (name, definition) in try await connection.query(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('notice', 'notice_body', 'notice_recipient')",
                logger: logger
            ).decode((String, String).self) {
                indexes[name] = definition
            }
            return indexes
        }
        #expect(indexes["notice_undelivered"]?.contains("WHERE ((delivered_at IS NULL) AND (pushed = true))") == true)
        #expect(indexes["notice_body_source_key"]?.contains("WHERE (source_key IS NOT NULL)") == true)
        #expect(indexes["notice_inbox"]?.contains("WHERE (archived_at IS NULL)") == true)
        #expect(indexes["notice_archive"]?.contains("WHERE (archived_at IS NOT NULL)") == true)
        #expect(indexes["notice_unread"]?.contains("WHERE ((read_at IS NULL) AND (archived_at IS NULL))") == true)
        #expect(indexes["notice_unseen"]?.contains("WHERE ((seen_at IS NULL) AND (archived_at IS NULL))") == true)
        #expect(indexes["notice_body_created_at"] != nil)
        #expect(indexes["notice_body_pkey"] != nil)
        #expect(indexes["notice_recipient_notice_id_recipient_key"] != nil)
        // The one-table schema is gone (its rows moved: InboxStoreTests).
        #expect(!indexes.keys.contains("notice_recipient_seq"))
        try await store.close()
        try await database.drop()
    }

    @Test func aRefusedConnectionThrowsWithinTheTimeout() async throws {
        // Nothing listens on port 1.
        var configuration = try PostgresTestDatabase.serverConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 1
        configuration.queryTimeout = .seconds(2)
        configuration.migrationTimeout = .seconds(2)
        let store = RunningPostgresStore(configuration: configuration)
        let started = ContinuousClock.now
        let error = await #expect(throws: PostgresStoreError.self) { try await store.count() }
        // Its budget is the 2 s operation deadline plus at most 2 s to learn the reason; the
        // bound only has to show it does not wait out the pool's 60 s, with slack for a busy machine.
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(error?.description.contains("PostgreSQL count failed: cannot connect") == true)
        await #expect(throws: PostgresStoreError.self) { try await store.migrate() }
        await #expect(throws: PostgresStoreError.self) { try await store.ping() }
        try await store.close()
    }

    @Test func aServerThatNeverAnswersCannotHangAnOperation() async throws {
        // A TCP listener that accepts and then says nothing, as a hung server or a dead link would.
        let group = MultiThreadedEventLoopGroup.singleton
        let silent = try await ServerBootstrap(group: group)
            .childChannelInitializer { _ in group.any().makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(silent.localAddress?.port)
        var configuration = try PostgresTestDatabase.serverConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = port
        // A connect timeout far beyond the bound below: only the operation's deadline can end it in time.
        configuration.connectTimeout = .seconds(120)
        configuration.queryTimeout = .seconds(1)
        let store = RunningPostgresStore(configuration: configuration)
        let started = ContinuousClock.now
        let error = await #expect(throws: PostgresStoreError.self) {
            _ = try await store.insert([NoticeRow(noticeId: 1, recipient: "a", payload: "{}", createdAt: 1)])
        }
        // The operation's deadline (1 s), then at most 2 s asking the server directly why; the
        // bound leaves a busy machine room and is still far below the connect timeout.
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(error?.description.contains("cannot connect: no answer within") == true)
        try await store.close()
        try await silent.close()
    }

    @Test func aWrongPasswordSaysSoWithoutShowingIt() async throws {
        var configuration = try PostgresTestDatabase.serverConfiguration()
        configuration.password = "not-the-password-\(UUID().uuidString)"
        let store = RunningPostgresStore(configuration: configuration)
        let error = await #expect(throws: PostgresStoreError.self) { try await store.ping() }
        #expect(error?.description.contains("28P01 password authentication failed") == true)
        #expect(error?.description.contains("not-the-password") == false)
        try await store.close()
    }

    @Test func descriptionsNeverShowThePassword() throws {
        let configuration = try PostgresNoticeStore.Configuration(url: "postgres://u:s3cr%40t@db.example:6543/notices?sslmode=require")
        #expect(configuration.password == "s3cr@t")
        for text in ["\(configuration)", String(reflecting: configuration), configuration.redactedURL] {
            #expect(!text.contains("s3cr"))
        }
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("s3cr"))
        #expect(configuration.redactedURL == "postgres://u:***@db.example:6543/notices?sslmode=require")
    }
}
