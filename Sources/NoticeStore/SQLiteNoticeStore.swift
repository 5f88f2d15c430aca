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
        migrator.registerMigration("v6-announcements") { db in
            for statement in NoticeSchema.announcementTables(.sqlite) { try db.execute(sql: statement) }
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
                let stored = try db.cachedStatement(sql: "SELECT 1 FROM notice_recipient WHERE notice_id = ? AND recipient = ?")
                var bodies = Set<Int64>()
                let batch = NoticeSchema.batch(rows)
                for (row, replaced) in zip(batch.rows, batch.replaced) {
                    if bodies.insert(row.noticeId).inserted {
                        try body.execute(arguments: [
                            row.noticeId, row.body.template, row.body.recipientOffset, row.createdAt, row.category, row.expiresAt,
                            row.collapseKey, row.sourceKey, row.pushed,
                        ])
                    }
                    if replaced {
                        // New to the store (so pushed), but replaced already: not stored.
                        if try Row.fetchOne(stored, arguments: [row.noticeId, row.recipient ?? ""]) == nil { inserted.insert(row.key) }
                        continue
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
        let announcement = try db.cachedStatement(sql: NoticeSchema.sqliteAnnouncementDelivered)
        for key in keys {
            try statement.execute(arguments: [millis, key.noticeId, key.recipient ?? ""])
            // No row of the user's (or it was delivered already): an announcement, perhaps.
            if db.changesCount == 0, let user = key.recipient {
                try announcement.execute(arguments: [user, millis, key.noticeId])
            }
        }
    }

    public func apply(_ command: InboxCommand, userId: String, at millis: Int64) async throws -> Int {
        try await write(rows: command.selection.rowsHint) { db in
            // ?1 is the user; the selection's own parameters follow. `selection` qualifies its
            // columns with the table it is given ("" for the user's rows, "r." for announcements).
            var arguments: StatementArguments = [userId]
            let selection: (String) -> String
            switch command.selection {
            case .ids(let ids):
                let list = (2..<(ids.count + 2)).map { "?\($0)" }.joined(separator: ",")
                selection = { "AND \($0)notice_id IN (\(list))" }
                arguments += StatementArguments(ids)
            case .upTo(let id, let category):
                guard let seq = try Int64.fetchOne(db, sql: NoticeSchema.listPosition(.sqlite), arguments: [id, userId]) else {
                    throw NoticeStoreError.unknownCursor
                }
                selection = { "AND \($0)seq <= \(seq)" + (category == nil ? "" : " AND \($0)category = ?2") }
                if let category { arguments += [category] }
            case .all(let category):
                selection = { category == nil ? "" : "AND \($0)category = ?2" }
                if let category { arguments += [category] }
            }
            let change = NoticeSchema.change(command.action, at: millis)
            // An expired row is out of the inbox: no command changes it.
            try db.execute(
                sql: "\(change.statement) WHERE recipient = ?1 \(selection("")) AND \(NoticeSchema.live(millis, table: "")) \(change.unchanged)",
                arguments: arguments
            )
            var changed = db.changesCount
            try db.execute(
                sql: NoticeSchema.announcementChange(command.action, user: "?1", selection: selection("r."), at: millis, .sqlite),
                arguments: arguments
            )
            changed += db.changesCount
            return changed
        }
    }

    public func counts(userId: String, category: String?, cap: Int) async throws -> NoticeCounts {
        let limit = max(0, min(cap, Int.max - 1)) + 1
        let sql = NoticeSchema.countsSQL(byCategory: category != nil, .sqlite)
        let now = NoticeSchema.nowMillis()
        let arguments: StatementArguments = category.map { [userId, $0, limit, now] } ?? [userId, limit, now]
        return try await pool.read { db in
            let statement = try db.cachedStatement(sql: sql)
            guard let row = try Row.fetchOne(statement, arguments: arguments) else { return NoticeCounts(unread: 0, unseen: 0, cap: cap) }
            return NoticeCounts(unread: row[0], unseen: row[1], cap: cap)
        }
    }

    public func undelivered(userId: String, limit: Int) async throws -> [NoticeRow] {
        let now = NoticeSchema.nowMillis()
        return try await pool.read { db in
            let statement = try db.cachedStatement(sql: NoticeSchema.replaySQL(.sqlite))
            return try Row.fetchAll(statement, arguments: [userId, limit, now, NoticeSchema.announcementReplaySince(now)])
                .reversed().map { Self.storedRow($0).row }
        }
    }

    public func notices(_ query: NoticeQuery) async throws -> [StoredNoticeRow] {
        try await pool.read { db in
            var upperSeq = Int64.max
            if let before = query.before {
                guard let seq = try Int64.fetchOne(db, sql: NoticeSchema.listPosition(.sqlite), arguments: [before, query.userId]) else {
                    throw NoticeStoreError.unknownCursor
                }
                upperSeq = seq
            }
            var arguments: StatementArguments = [query.userId, upperSeq, query.limit, NoticeSchema.nowMillis()]
            if let category = query.category { arguments += [category] }
            return try Row.fetchAll(db.cachedStatement(sql: NoticeSchema.listSQL(query, .sqlite)), arguments: arguments).map(Self.storedRow)
        }
    }

    public func row(_ key: NoticeKey) async throws -> StoredNoticeRow? {
        try await pool.read { db in
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT \(NoticeSchema.columns) WHERE r.notice_id = ? AND r.recipient = ?",
                arguments: [key.noticeId, key.recipient ?? ""]
            ) {
                return Self.storedRow(row)
            }
            guard let user = key.recipient else { return nil }
            return try Row.fetchOne(
                db,
                sql:
                    "SELECT \(NoticeSchema.announcementColumns(user: "?1", .sqlite)) WHERE \(NoticeSchema.announced(user: "?1")) AND r.notice_id = ?2",
                arguments: [user, key.noticeId]
            ).map(Self.storedRow)
        }
    }

    public func recall(noticeId: Int64) async throws -> RecalledNotice? {
        try await write(rows: 1) { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM notice_body WHERE notice_id = ?", arguments: [noticeId]) != nil else { return nil }
            let recipients = try String.fetchAll(db, sql: "SELECT recipient FROM notice_recipient WHERE notice_id = ?", arguments: [noticeId])
            try db.execute(sql: "DELETE FROM notice_recipient WHERE notice_id = ?", arguments: [noticeId])
            try db.execute(sql: "DELETE FROM notice_announcement_state WHERE notice_id = ?", arguments: [noticeId])
            try db.execute(sql: "DELETE FROM notice_body WHERE notice_id = ?", arguments: [noticeId])
            return RecalledNotice(recipients: recipients.filter { !$0.isEmpty }, announcement: recipients.contains(""))
        }
    }

    public func receipts(noticeId: Int64, after: String?, limit: Int) async throws -> NoticeReceipts? {
        try await pool.read { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM notice_body WHERE notice_id = ?", arguments: [noticeId]) != nil else { return nil }
            if let seq = try Int64.fetchOne(
                db,
                sql: "SELECT seq FROM notice_recipient WHERE notice_id = ? AND recipient = ''",
                arguments: [noticeId]
            ) {
                return try Self.announcementReceipts(noticeId: noticeId, seq: seq, after: after, limit: limit, in: db)
            }
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

    /// An announcement's receipts: the users with a state of it, and how many users' marks passed it.
    private static func announcementReceipts(noticeId: Int64, seq: Int64, after: String?, limit: Int, in db: Database) throws -> NoticeReceipts {
        let delivered = try Int.fetchOne(db, sql: NoticeSchema.announcementDeliveredCount("?"), arguments: [seq]) ?? 0
        let totals = try Row.fetchOne(db, sql: NoticeSchema.announcementStateTotals("?"), arguments: [noticeId])
        let page = try Row.fetchAll(
            db,
            sql: """
                SELECT recipient, seen_at, read_at FROM notice_announcement_state
                WHERE notice_id = ? AND recipient > ? ORDER BY recipient LIMIT ?
                """,
            arguments: [noticeId, after ?? "", limit]
        ).map { NoticeReceipts.Recipient(userId: $0["recipient"], deliveredAt: nil, seenAt: $0["seen_at"], readAt: $0["read_at"]) }
        return NoticeReceipts(
            recipients: totals?[0] ?? 0,
            delivered: delivered,
            seen: totals?[1] ?? 0,
            read: totals?[2] ?? 0,
            page: page,
            announcement: true
        )
    }

    public func purge(createdBefore millis: Int64, limit: Int) async throws -> Int {
        try await write(rows: limit) { db in
            let doomed = try Int64.fetchAll(
                db,
                sql: "SELECT notice_id FROM notice_body WHERE created_at < ? ORDER BY created_at LIMIT ?",
                arguments: [millis, limit]
            )
            let recipients = try db.cachedStatement(sql: "DELETE FROM notice_recipient WHERE notice_id = ?")
            let states = try db.cachedStatement(sql: "DELETE FROM notice_announcement_state WHERE notice_id = ?")
            let bodies = try db.cachedStatement(sql: "DELETE FROM notice_body WHERE notice_id = ?")
            for id in doomed {
                try recipients.execute(arguments: [id])
                try states.execute(arguments: [id])
                try bodies.execute(arguments: [id])
            }
            try db.execute(sql: NoticeSchema.purgeAnnouncementMarks("?", "?"), arguments: [millis, limit])
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
