import Foundation
import GRDB
public import NoticeCore

/// The SQLite store (SPEC §6): one file in WAL mode, migrations at start, batched
/// transactions. `synchronous=FULL`: a committed batch survives power loss, at the cost
/// of one fsync per batch (never per notice). WAL checkpoints run beside the writer
/// (``SQLiteCheckpointer``), not inside a commit.
public final class SQLiteNoticeStore: NoticeStore {
    private let pool: DatabasePool
    private let checkpointer: SQLiteCheckpointer

    /// Opens (creating it and its folder if missing) the database at `path`.
    public init(path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(2)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(SQLiteCheckpointer.backstopPages)")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        checkpointer = try SQLiteCheckpointer(path: path)
    }

    /// `pool.write`, counted for the checkpointer (`rows`: the rows the transaction writes, at most).
    private func write<T: Sendable>(rows: Int, _ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let result = try await pool.write(updates)
        checkpointer.committed(rows: rows)
        return result
    }

    public func migrate() async throws {
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-notice") { db in
            // recipient is '' for a broadcast notice (a user id is never empty).
            try db.execute(
                sql: """
                    CREATE TABLE notice (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        notice_id INTEGER NOT NULL,
                        recipient TEXT NOT NULL,
                        payload TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        delivered_at INTEGER,
                        read_at INTEGER,
                        UNIQUE (notice_id, recipient)
                    );
                    CREATE INDEX notice_recipient_seq ON notice (recipient, seq);
                    CREATE INDEX notice_created_at ON notice (created_at);
                    """
            )
        }
        migrator.registerMigration("v2-source-key") { db in
            try db.execute(
                sql: """
                    ALTER TABLE notice ADD COLUMN source_key TEXT;
                    CREATE INDEX notice_source_key ON notice (source_key) WHERE source_key IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v3-undelivered-index") { db in
            // Replay reads a user's undelivered rows; most rows are delivered, so index only the rest.
            try db.execute(sql: "CREATE INDEX notice_undelivered ON notice (recipient, seq) WHERE delivered_at IS NULL")
        }
        migrator.registerMigration("v4-pushed") { db in
            // Rows stored before this count as pushed: which targets were pushed then is not known.
            try db.execute(
                sql: """
                    ALTER TABLE notice ADD COLUMN pushed INTEGER NOT NULL DEFAULT 1;
                    DROP INDEX notice_undelivered;
                    CREATE INDEX notice_undelivered ON notice (recipient, seq) WHERE delivered_at IS NULL AND pushed = 1;
                    """
            )
        }
        return migrator
    }

    public func insert(_ rows: [NoticeRow], markingDelivered delivered: [NoticeKey], at millis: Int64) async throws -> Set<NoticeKey> {
        guard !rows.isEmpty || !delivered.isEmpty else { return [] }
        return try await write(rows: rows.count + delivered.count) { db in
            var inserted = Set<NoticeKey>()
            if !rows.isEmpty {
                let statement = try db.cachedStatement(
                    sql: """
                        INSERT INTO notice (notice_id, recipient, payload, created_at, source_key, pushed) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (notice_id, recipient) DO NOTHING
                        """
                )
                for row in rows {
                    try statement.execute(arguments: [row.noticeId, row.recipient ?? "", row.payload, row.createdAt, row.sourceKey, row.pushed])
                    if db.changesCount > 0 { inserted.insert(row.key) }
                }
            }
            try Self.markDelivered(delivered, at: millis, in: db)
            return inserted
        }
    }

    public func noticeIds(forSourceKeys keys: [String]) async throws -> [String: Int64] {
        guard !keys.isEmpty else { return [:] }
        return try await pool.read { db in
            var ids: [String: Int64] = [:]
            let statement = try db.cachedStatement(sql: "SELECT notice_id FROM notice WHERE source_key = ? LIMIT 1")
            for key in Set(keys) {
                if let id = try Int64.fetchOne(statement, arguments: [key]) { ids[key] = id }
            }
            return ids
        }
    }

    public func markDelivered(_ keys: [NoticeKey], at millis: Int64) async throws {
        guard !keys.isEmpty else { return }
        try await write(rows: keys.count) { db in try Self.markDelivered(keys, at: millis, in: db) }
    }

    private static func markDelivered(_ keys: [NoticeKey], at millis: Int64, in db: Database) throws {
        guard !keys.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: "UPDATE notice SET delivered_at = ? WHERE notice_id = ? AND recipient = ? AND delivered_at IS NULL"
        )
        for key in keys {
            try statement.execute(arguments: [millis, key.noticeId, key.recipient ?? ""])
        }
    }

    public func markRead(noticeId: Int64, userId: String, at millis: Int64) async throws -> Bool {
        try await write(rows: 1) { db in
            try db.execute(
                sql: "UPDATE notice SET read_at = COALESCE(read_at, ?) WHERE notice_id = ? AND recipient = ?",
                arguments: [millis, noticeId, userId]
            )
            return db.changesCount > 0
        }
    }

    public func undelivered(userId: String, limit: Int) async throws -> [NoticeRow] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT notice_id, recipient, payload, created_at, pushed, delivered_at, read_at FROM notice
                    WHERE recipient = ? AND delivered_at IS NULL AND pushed = 1 ORDER BY seq DESC LIMIT ?
                    """,
                arguments: [userId, limit]
            ).reversed().map { Self.storedRow($0).row }
        }
    }

    public func notices(_ query: NoticeQuery) async throws -> [StoredNoticeRow] {
        try await pool.read { db in
            var upperSeq = Int64.max
            if let before = query.before {
                guard
                    let seq = try Int64.fetchOne(
                        db,
                        sql: "SELECT seq FROM notice WHERE notice_id = ? AND recipient = ?",
                        arguments: [before, query.userId]
                    )
                else { throw NoticeStoreError.unknownCursor }
                upperSeq = seq
            }
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT notice_id, recipient, payload, created_at, pushed, delivered_at, read_at FROM notice
                    WHERE recipient = ? AND seq < ? \(query.unreadOnly ? "AND read_at IS NULL" : "")
                    ORDER BY seq DESC LIMIT ?
                    """,
                arguments: [query.userId, upperSeq, query.limit]
            ).map(Self.storedRow)
        }
    }

    public func row(_ key: NoticeKey) async throws -> StoredNoticeRow? {
        try await pool.read { db in
            try Row.fetchOne(
                db,
                sql:
                    "SELECT notice_id, recipient, payload, created_at, pushed, delivered_at, read_at FROM notice WHERE notice_id = ? AND recipient = ?",
                arguments: [key.noticeId, key.recipient ?? ""]
            ).map(Self.storedRow)
        }
    }

    public func purge(createdBefore millis: Int64, limit: Int) async throws -> Int {
        try await write(rows: limit) { db in
            try db.execute(
                sql: "DELETE FROM notice WHERE seq IN (SELECT seq FROM notice WHERE created_at < ? ORDER BY created_at LIMIT ?)",
                arguments: [millis, limit]
            )
            return db.changesCount
        }
    }

    public func count() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM notice") ?? 0 }
    }

    public func ping() async throws {
        // BEGIN IMMEDIATE takes the write lock: readiness means we could commit, not just read.
        try await pool.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) { .commit }
        }
    }

    public func close() async throws {
        try checkpointer.close()
        try pool.close()
    }

    static func storedRow(_ row: Row) -> StoredNoticeRow {
        let recipient: String = row["recipient"]
        return StoredNoticeRow(
            row: NoticeRow(
                noticeId: row["notice_id"],
                recipient: recipient.isEmpty ? nil : recipient,
                payload: row["payload"],
                createdAt: row["created_at"],
                pushed: row["pushed"]
            ),
            deliveredAt: row["delivered_at"],
            readAt: row["read_at"]
        )
    }
}
