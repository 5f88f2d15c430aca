import Foundation
import GRDB
public import NoticeCore

/// The SQLite store (SPEC §6): one file in WAL mode, migrations at start, batched
/// transactions. `synchronous=FULL`: a committed batch survives power loss, at the cost
/// of one fsync per batch (never per notice). WAL checkpoints run beside the writer
/// (``SQLiteCheckpointer``), not inside a commit.
public final class SQLiteNoticeStore: NoticeStore {
    let pool: DatabasePool
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
        migrator.registerMigration("v5-body-once") { db in
            try db.execute(sql: NoticeSchema.sqliteBodyOnce)
        }
        return migrator
    }

    public func insert(_ rows: [NoticeRow], markingDelivered delivered: [NoticeKey], at millis: Int64) async throws -> Set<NoticeKey> {
        guard !rows.isEmpty || !delivered.isEmpty else { return [] }
        return try await write(rows: rows.count + delivered.count) { db in
            var inserted = Set<NoticeKey>()
            if !rows.isEmpty {
                let body = try db.cachedStatement(sql: NoticeSchema.insertBody)
                let recipient = try db.cachedStatement(
                    sql: """
                        INSERT INTO notice_recipient (notice_id, recipient, category, pushed, expires_at, collapse_key) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (notice_id, recipient) DO NOTHING
                        """
                )
                let collapse = try db.cachedStatement(
                    sql: """
                        DELETE FROM notice_recipient
                        WHERE recipient = ? AND collapse_key = ? AND collapse_key IS NOT NULL AND read_at IS NULL AND notice_id <> ?
                        """
                )
                var bodies = Set<Int64>()
                for row in rows {
                    if bodies.insert(row.noticeId).inserted {
                        try body.execute(arguments: [
                            row.noticeId, row.body.template, row.body.recipientOffset, row.createdAt, row.category, row.expiresAt,
                            row.collapseKey, row.sourceKey, row.pushed,
                        ])
                    }
                    try recipient.execute(arguments: [row.noticeId, row.recipient ?? "", row.category, row.pushed, row.expiresAt, row.collapseKey])
                    guard db.changesCount > 0 else { continue }
                    inserted.insert(row.key)
                    if let key = row.collapseKey, let user = row.recipient {
                        try collapse.execute(arguments: [user, key, row.noticeId])
                    }
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
            let statement = try db.cachedStatement(sql: "SELECT notice_id FROM notice_body WHERE source_key = ? LIMIT 1")
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
            sql: "UPDATE notice_recipient SET delivered_at = ? WHERE notice_id = ? AND recipient = ? AND delivered_at IS NULL"
        )
        for key in keys {
            try statement.execute(arguments: [millis, key.noticeId, key.recipient ?? ""])
        }
    }

    public func apply(_ command: InboxCommand, userId: String, at millis: Int64) async throws -> Int {
        try await write(rows: command.selection.rowsHint) { db in
            var arguments: StatementArguments = [userId]
            var selection = "recipient = ?"
            switch command.selection {
            case .ids(let ids):
                selection += " AND notice_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))"
                arguments += StatementArguments(ids)
            case .upTo(let id, let category):
                guard
                    let seq = try Int64.fetchOne(
                        db,
                        sql: "SELECT seq FROM notice_recipient WHERE notice_id = ? AND recipient = ?",
                        arguments: [id, userId]
                    )
                else { throw NoticeStoreError.unknownCursor }
                selection += " AND seq <= ?"
                arguments += [seq]
                if let category {
                    selection += " AND category = ?"
                    arguments += [category]
                }
            case .all(let category):
                if let category {
                    selection += " AND category = ?"
                    arguments += [category]
                }
            }
            let change = NoticeSchema.change(command.action, at: millis)
            // An expired row is out of the inbox: no command changes it.
            selection += " AND \(NoticeSchema.live(millis, table: ""))"
            try db.execute(sql: "\(change.statement) WHERE \(selection) \(change.unchanged)", arguments: arguments)
            return db.changesCount
        }
    }

    public func counts(userId: String, category: String?, cap: Int) async throws -> NoticeCounts {
        let limit = max(0, min(cap, Int.max - 1)) + 1
        let now = NoticeSchema.nowMillis()
        return try await pool.read { db in
            func count(_ state: String) throws -> Int {
                try Int.fetchOne(
                    db,
                    sql: NoticeSchema.countSQL(state, byCategory: category != nil, .sqlite, now: now),
                    arguments: category.map { [userId, $0, limit] } ?? [userId, limit]
                ) ?? 0
            }
            return NoticeCounts(unread: try count("read_at"), unseen: try count("seen_at"), cap: cap)
        }
    }

    public func undelivered(userId: String, limit: Int) async throws -> [NoticeRow] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(NoticeSchema.columns) WHERE r.recipient = ? AND r.delivered_at IS NULL AND r.pushed = true
                    AND \(NoticeSchema.live(NoticeSchema.nowMillis())) ORDER BY r.seq DESC LIMIT ?
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
                        sql: "SELECT seq FROM notice_recipient WHERE notice_id = ? AND recipient = ?",
                        arguments: [before, query.userId]
                    )
                else { throw NoticeStoreError.unknownCursor }
                upperSeq = seq
            }
            var arguments: StatementArguments = [query.userId, upperSeq]
            var filter = query.archived ? "AND r.archived_at IS NOT NULL" : "AND r.archived_at IS NULL"
            filter += " AND \(NoticeSchema.live(NoticeSchema.nowMillis()))"
            if query.unreadOnly { filter += " AND r.read_at IS NULL" }
            if let category = query.category {
                filter += " AND r.category = ?"
                arguments += [category]
            }
            arguments += [query.limit]
            return try Row.fetchAll(
                db,
                sql: "SELECT \(NoticeSchema.columns) WHERE r.recipient = ? AND r.seq < ? \(filter) ORDER BY r.seq DESC LIMIT ?",
                arguments: arguments
            ).map(Self.storedRow)
        }
    }

    public func row(_ key: NoticeKey) async throws -> StoredNoticeRow? {
        try await pool.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT \(NoticeSchema.columns) WHERE r.notice_id = ? AND r.recipient = ?",
                arguments: [key.noticeId, key.recipient ?? ""]
            ).map(Self.storedRow)
        }
    }

    public func recall(noticeId: Int64) async throws -> [String]? {
        try await write(rows: 1) { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM notice_body WHERE notice_id = ?", arguments: [noticeId]) != nil else { return nil }
            let recipients = try String.fetchAll(
                db,
                sql: "SELECT recipient FROM notice_recipient WHERE notice_id = ? AND recipient <> ''",
                arguments: [noticeId]
            )
            try db.execute(sql: "DELETE FROM notice_recipient WHERE notice_id = ?", arguments: [noticeId])
            try db.execute(sql: "DELETE FROM notice_body WHERE notice_id = ?", arguments: [noticeId])
            return recipients
        }
    }

    public func receipts(noticeId: Int64, after: String?, limit: Int) async throws -> NoticeReceipts? {
        try await pool.read { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM notice_body WHERE notice_id = ?", arguments: [noticeId]) != nil else { return nil }
            guard let totals = try Row.fetchOne(db, sql: NoticeSchema.receiptTotals("?"), arguments: [noticeId]) else { return nil }
            let page = try Row.fetchAll(
                db,
                sql: """
                    SELECT recipient, delivered_at, seen_at, read_at FROM notice_recipient
                    WHERE notice_id = ? AND recipient > ? ORDER BY recipient LIMIT ?
                    """,
                arguments: [noticeId, after ?? "", limit]
            ).map { NoticeReceipts.Recipient(userId: $0["recipient"], deliveredAt: $0["delivered_at"], seenAt: $0["seen_at"], readAt: $0["read_at"]) }
            return NoticeReceipts(recipients: totals[0], delivered: totals[1], seen: totals[2], read: totals[3], page: page)
        }
    }

    public func purge(createdBefore millis: Int64, limit: Int) async throws -> Int {
        try await write(rows: limit) { db in
            let doomed = try Int64.fetchAll(
                db,
                sql: "SELECT notice_id FROM notice_body WHERE created_at < ? ORDER BY created_at LIMIT ?",
                arguments: [millis, limit]
            )
            let recipients = try db.cachedStatement(sql: "DELETE FROM notice_recipient WHERE notice_id = ?")
            let bodies = try db.cachedStatement(sql: "DELETE FROM notice_body WHERE notice_id = ?")
            for id in doomed {
                try recipients.execute(arguments: [id])
                try bodies.execute(arguments: [id])
            }
            return doomed.count
        }
    }

    public func count() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM notice_recipient") ?? 0 }
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

    /// A row of ``NoticeSchema/columns``.
    static func storedRow(_ row: Row) -> StoredNoticeRow {
        let recipient: String = row["recipient"]
        return StoredNoticeRow(
            row: NoticeRow(
                noticeId: row["notice_id"],
                recipient: recipient.isEmpty ? nil : recipient,
                body: NoticeBody(template: row["payload"], recipientOffset: row["recipient_offset"]),
                createdAt: row["created_at"],
                category: row["category"],
                expiresAt: row["expires_at"],
                collapseKey: row["collapse_key"],
                pushed: row["pushed"]
            ),
            deliveredAt: row["delivered_at"],
            seenAt: row["seen_at"],
            readAt: row["read_at"],
            archivedAt: row["archived_at"]
        )
    }
}

extension InboxSelection {
    /// At most how many rows a command changes, for the checkpointer's count (a guess for the
    /// open-ended selections: they are rare, and the count only paces checkpoints).
    fileprivate var rowsHint: Int {
        switch self {
        case .ids(let ids): ids.count
        case .upTo, .all: 1_000
        }
    }
}
