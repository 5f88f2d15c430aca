import Foundation
import GRDB
import NoticeCore
import NoticeTesting
import PostgresNIO
import Testing

@testable import NoticeStore

/// The stores the contract suite runs against. Each test gets an empty store of its own:
/// a new SQLite file, or a new PostgreSQL database (dropped when the store is closed).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    /// Needs `NOTICE_TEST_POSTGRES_URL` (scripts/test sets it); fails without it.
    case postgres

    var testDescription: String { rawValue }

    func makeStore() async throws -> any NoticeStore {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("notice-store-\(UUID().uuidString)/notice.sqlite").path
            let store = try SQLiteNoticeStore(path: path)
            try await store.migrate()
            return store
        case .postgres:
            let database = try await PostgresTestDatabase.create()
            let store = RunningPostgresStore(configuration: database.configuration, onClose: database.drop)
            do {
                try await store.migrate()
            } catch {
                try? await store.close()
                throw error
            }
            return store
        }
    }
}

extension StoreKind {
    /// An empty store with the schema as it was before bodies were shared (one table `notice`:
    /// SQLite v1–v4, PostgreSQL 1–2), `setup` run on it, not yet migrated further.
    func makeOneTableStore(_ setup: String) async throws -> any NoticeStore {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("notice-store-\(UUID().uuidString)/notice.sqlite").path
            let store = try SQLiteNoticeStore(path: path)
            try SQLiteNoticeStore.migrator.migrate(store.pool, upTo: "v4-pushed")
            try await execute(setup, on: store)
            return store
        case .postgres:
            let database = try await PostgresTestDatabase.create()
            let store = RunningPostgresStore(configuration: database.configuration, onClose: database.drop)
            try await store.store.migrate(upTo: 2)
            try await execute(setup, on: store)
            return store
        }
    }

    /// Runs statements (`;`-separated, no parameters) on the store's database.
    func execute(_ sql: String, on store: any NoticeStore) async throws {
        if let store = store as? SQLiteNoticeStore {
            try await store.pool.write { try $0.execute(sql: sql) }
        } else if let store = store as? RunningPostgresStore {
            for statement in sql.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !statement.isEmpty {
                try await store.store.perform("test") { connection, logger in
                    _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                }
            }
        }
    }

    /// What the body-once schema holds: bodies, their JSON's bytes, and recipient rows that
    /// carry JSON of their own (moved from the one-table schema).
    struct Storage: Equatable {
        var bodies: Int
        var bodyBytes: Int
        var rowsWithOwnPayload: Int
    }

    func storage(of store: any NoticeStore) async throws -> Storage {
        let sql = """
            SELECT (SELECT count(*) FROM notice_body), (SELECT coalesce(sum(length(payload)), 0) FROM notice_body),
                (SELECT count(*) FROM notice_recipient WHERE payload IS NOT NULL)
            """
        if let store = store as? SQLiteNoticeStore {
            return try await store.pool.read { db in
                let row = try #require(try Row.fetchOne(db, sql: sql))
                return Storage(bodies: row[0], bodyBytes: row[1], rowsWithOwnPayload: row[2])
            }
        }
        let store = try #require(store as? RunningPostgresStore)
        return try await store.store.perform("test") { connection, logger in
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            let (bodies, bytes, own) = try #require(try await result.decode((Int64, Int64, Int64).self).first(where: { _ in true }))
            return Storage(bodies: Int(bodies), bodyBytes: Int(bytes), rowsWithOwnPayload: Int(own))
        }
    }

    /// The one integer `sql` (no parameters) answers.
    func integer(_ sql: String, on store: any NoticeStore) async throws -> Int {
        if let store = store as? SQLiteNoticeStore {
            return try await store.pool.read { db in try #require(try Int.fetchOne(db, sql: sql)) }
        }
        let store = try #require(store as? RunningPostgresStore)
        return try await store.store.perform("test") { connection, logger in
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            return Int(try #require(try await result.decode(Int64.self).first(where: { _ in true })))
        }
    }

    /// The query plan of `sql` with these parameters, as text (PostgreSQL: with sequential
    /// scans off, so that a tiny test table still shows which index the query can use).
    func plan(of sql: String, _ parameters: [String], on store: any NoticeStore) async throws -> String {
        if let store = store as? SQLiteNoticeStore {
            return try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN \(sql)", arguments: StatementArguments(parameters))
                    .map { String(describing: $0["detail"] as String? ?? "") }.joined(separator: "\n")
            }
        }
        let store = try #require(store as? RunningPostgresStore)
        return try await store.store.perform("test") { connection, logger in
            _ = try await connection.query("SET enable_seqscan = off", logger: logger).collect()
            var bindings = PostgresBindings()
            // Numbers as bigint (a LIMIT), the rest as text.
            for parameter in parameters {
                if let number = Int64(parameter) { bindings.append(number) } else { bindings.append(parameter) }
            }
            let result = try await connection.query(PostgresQuery(unsafeSQL: "EXPLAIN \(sql)", binds: bindings), logger: logger)
            var lines: [String] = []
            for try await line in result.decode(String.self) { lines.append(line) }
            _ = try await connection.query("RESET enable_seqscan", logger: logger).collect()
            return lines.joined(separator: "\n")
        }
    }
}
