public import Logging
public import NoticeCore
import PostgresNIO
public import ServiceLifecycle

/// The PostgreSQL store (SPEC §6), for several nodes sharing one database: a pool of
/// connections (postgres-nio's `PostgresClient`), migrations at start under an advisory lock
/// (see `PostgresNoticeStore+Migrations.swift`), one statement per batch.
///
/// The pool works while ``run()`` runs: the service runs the store in its `ServiceGroup`, which
/// ends it (on graceful shutdown) after everything that uses it. ``migrate()`` brings a pool of
/// its own, so that a bad server fails the start before any service runs.
///
/// Every operation is bounded by ``Configuration/queryTimeout`` (waiting for a connection
/// included) and throws a ``PostgresStoreError`` when the server is down, unreachable or
/// refuses: the caller retries, nothing hangs.
public final class PostgresNoticeStore: NoticeStore, Service {
    /// Where it connects and its timeouts.
    public let configuration: Configuration
    let client: PostgresClient
    let logger: Logger

    /// The pool's settings; connections are opened on demand, so this never fails: an
    /// unreachable server shows in the first operation (usually ``migrate()``).
    public init(configuration: Configuration, logger: Logger = Logger(label: "notice.store.postgres")) {
        self.configuration = configuration
        self.logger = logger
        client = Self.makeClient(configuration, logger: logger)
    }

    /// Runs the connection pool until graceful shutdown or cancellation; the pool's
    /// connections are closed when it returns. Operations before it starts wait for a
    /// connection (within ``Configuration/queryTimeout``). Call it once.
    public func run() async {
        await client.run()
    }

    static func makeClient(_ configuration: Configuration, logger: Logger) -> PostgresClient {
        var options = PostgresClient.Configuration(
            host: configuration.host,
            port: configuration.port,
            username: configuration.username,
            password: configuration.password,
            database: configuration.database,
            tls: configuration.tls.postgresTLS
        )
        options.options.connectTimeout = configuration.connectTimeout
        options.options.maximumConnections = configuration.maximumConnections
        options.options.additionalStartupParameters = [
            ("application_name", "notice-service"),
            // The server gives up on a statement when we would (the migration raises it locally).
            ("statement_timeout", "\(configuration.queryTimeout.saturatedMilliseconds)"),
            ("idle_in_transaction_session_timeout", "\(configuration.migrationTimeout.saturatedMilliseconds)"),
        ]
        return PostgresClient(configuration: options, backgroundLogger: logger)
    }

    public func insert(_ rows: [NoticeRow], markingDelivered delivered: [NoticeKey], at millis: Int64) async throws -> Set<NoticeKey> {
        let (batch, replaced) = NoticeSchema.batch(rows)
        guard !batch.isEmpty || !delivered.isEmpty else { return [] }
        // One body per notice id (the first row's): ON CONFLICT DO UPDATE may touch a row once.
        var bodyIds = Set<Int64>()
        let bodies = batch.filter { bodyIds.insert($0.noticeId).inserted }
        let markedIds = delivered.map(\.noticeId)
        let markedRecipients = delivered.map { $0.recipient ?? "" }
        let ids = bodies.map(\.noticeId)
        let payloads = bodies.map(\.body.template)
        let offsets = bodies.map { $0.body.recipientOffset ?? -1 }
        let createdAts = bodies.map(\.createdAt)
        let bodyCategories = bodies.map { $0.category ?? "" }
        let bodyExpiries = bodies.map { $0.expiresAt ?? -1 }
        let bodyCollapseKeys = bodies.map { $0.collapseKey ?? "" }
        let sourceKeys = bodies.map { $0.sourceKey ?? "" }
        let bodyPushed = bodies.map(\.pushed)
        // A row a later one of the batch replaces (the same recipient and collapse key) is not
        // written; it is returned if it was new. The statement cannot do this itself: it does
        // not see the rows it inserts.
        let stored = zip(batch, replaced).filter { !$1 }.map(\.0)
        let replacedRows = zip(batch, replaced).filter { $1 }.map(\.0)
        let replacedIds = replacedRows.map(\.noticeId)
        let replacedRecipients = replacedRows.map { $0.recipient ?? "" }
        let rowIds = stored.map(\.noticeId)
        let recipients = stored.map { $0.recipient ?? "" }
        let categories = stored.map { $0.category ?? "" }
        let pushed = stored.map(\.pushed)
        let expiries = stored.map { $0.expiresAt ?? -1 }
        let collapseKeys = stored.map { $0.recipient == nil ? "" : $0.collapseKey ?? "" }
        // One statement is one transaction; unnest keeps the batch's order, so seq follows it.
        // The statements in WITH run once, to completion, whether or not the main INSERT reads
        // them. `delivered` marks rows committed by earlier batches (an empty array: nothing),
        // `announced` moves the announcement marks of users shown a broadcast (its key has no
        // row: one mark per user, never back); a body is stored once per notice id (see
        // NoticeSchema.insertBody).
        return try await perform("insert") { connection, logger in
            let inserted = try await connection.query(
                """
                WITH delivered AS (
                    UPDATE notice_recipient SET delivered_at = \(millis)
                    FROM unnest(\(markedIds)::bigint[], \(markedRecipients)::text[]) AS marked(notice_id, recipient)
                    WHERE notice_recipient.notice_id = marked.notice_id AND notice_recipient.recipient = marked.recipient
                        AND notice_recipient.delivered_at IS NULL
                ), announced AS (
                    INSERT INTO notice_announcement_delivered (recipient, seq, delivered_at)
                    SELECT marked.recipient, max(r.seq), \(millis)
                    FROM unnest(\(markedIds)::bigint[], \(markedRecipients)::text[]) AS marked(notice_id, recipient)
                    JOIN notice_recipient r ON r.notice_id = marked.notice_id AND r.recipient = ''
                    WHERE marked.recipient <> ''
                    GROUP BY marked.recipient ORDER BY marked.recipient
                    ON CONFLICT (recipient) DO UPDATE SET seq = excluded.seq, delivered_at = excluded.delivered_at
                    WHERE excluded.seq > notice_announcement_delivered.seq
                ), bodies AS (
                    INSERT INTO notice_body (notice_id, payload, recipient_offset, created_at, category, expires_at, collapse_key, source_key, pushed)
                    SELECT id, payload, NULLIF(recipient_offset, -1)::integer, created_at, NULLIF(category, ''), NULLIF(expires_at, -1),
                        NULLIF(collapse_key, ''), NULLIF(source_key, ''), pushed
                    FROM unnest(\(ids)::bigint[], \(payloads)::text[], \(offsets)::bigint[], \(createdAts)::bigint[], \(bodyCategories)::text[],
                        \(bodyExpiries)::bigint[], \(bodyCollapseKeys)::text[], \(sourceKeys)::text[], \(bodyPushed)::boolean[])
                        AS body(id, payload, recipient_offset, created_at, category, expires_at, collapse_key, source_key, pushed)
                    ON CONFLICT (notice_id) DO UPDATE SET payload = excluded.payload, recipient_offset = excluded.recipient_offset
                    WHERE notice_body.recipient_offset IS NULL AND excluded.recipient_offset IS NOT NULL
                ), collapsed AS (
                    DELETE FROM notice_recipient USING unnest(\(rowIds)::bigint[], \(recipients)::text[], \(collapseKeys)::text[])
                        AS newer(id, recipient, collapse_key)
                    WHERE newer.collapse_key <> '' AND notice_recipient.recipient = newer.recipient
                        AND notice_recipient.collapse_key = newer.collapse_key AND notice_recipient.read_at IS NULL
                        AND notice_recipient.notice_id <> newer.id
                        AND NOT EXISTS (
                            SELECT 1 FROM notice_recipient stored WHERE stored.notice_id = newer.id AND stored.recipient = newer.recipient
                        )
                ), inserted AS (
                    INSERT INTO notice_recipient (notice_id, recipient, category, pushed, expires_at, collapse_key)
                    SELECT id, recipient, NULLIF(category, ''), pushed, NULLIF(expires_at, -1), NULLIF(collapse_key, '')
                    FROM unnest(\(rowIds)::bigint[], \(recipients)::text[], \(categories)::text[], \(pushed)::boolean[], \(expiries)::bigint[],
                        \(collapseKeys)::text[])
                        AS batch(id, recipient, category, pushed, expires_at, collapse_key)
                    ON CONFLICT (notice_id, recipient) DO NOTHING
                    RETURNING notice_id, recipient
                )
                SELECT notice_id, recipient FROM inserted
                UNION ALL
                SELECT id, recipient FROM unnest(\(replacedIds)::bigint[], \(replacedRecipients)::text[]) AS replaced(id, recipient)
                WHERE NOT EXISTS (SELECT 1 FROM notice_recipient stored WHERE stored.notice_id = replaced.id AND stored.recipient = replaced.recipient)
                """,
                logger: logger
            )
            var keys = Set<NoticeKey>()
            for try await (id, recipient) in inserted.decode((Int64, String).self) {
                keys.insert(NoticeKey(noticeId: id, recipient: recipient.isEmpty ? nil : recipient))
            }
            return keys
        }
    }

    public func noticeIds(forSourceKeys keys: [String]) async throws -> [String: Int64] {
        let unique = Array(Set(keys))
        guard !unique.isEmpty else { return [:] }
        return try await perform("noticeIds") { connection, logger in
            let found = try await connection.query(
                "SELECT source_key, notice_id FROM notice_body WHERE source_key = ANY(\(unique)::text[])",
                logger: logger
            )
            var ids: [String: Int64] = [:]
            for try await (key, id) in found.decode((String, Int64).self) where ids[key] == nil { ids[key] = id }
            return ids
        }
    }

    public func markDelivered(_ keys: [NoticeKey], at millis: Int64) async throws {
        guard !keys.isEmpty else { return }
        // The insert's statement with no rows: its WITH marks them.
        _ = try await insert([], markingDelivered: keys, at: millis)
    }

    public func apply(_ command: InboxCommand, userId: String, at millis: Int64) async throws -> Int {
        let change = NoticeSchema.change(command.action, at: millis)
        // An expired row is out of the inbox: no command changes it.
        let live = NoticeSchema.live(millis, table: "")
        // $1 is the user; the selection's own parameter, if any, is $2. `selection` qualifies
        // its columns with the table it is given ("" for the user's rows, "r." for announcements)
        // and is handed the upTo notice's list position.
        var bindings = PostgresBindings()
        bindings.append(userId)
        let selection: @Sendable (String, Int64) -> String
        var upTo: Int64?
        switch command.selection {
        case .ids(let ids):
            bindings.append(ids)
            selection = { table, _ in "AND \(table)notice_id = ANY($2::bigint[])" }
        case .upTo(let id, let category):
            upTo = id
            if let category { bindings.append(category) }
            selection = { table, seq in "AND \(table)seq <= \(seq)" + (category == nil ? "" : " AND \(table)category = $2") }
        case .all(let category):
            if let category { bindings.append(category) }
            selection = { table, _ in category == nil ? "" : "AND \(table)category = $2" }
        }
        let cursor = upTo
        return try await perform("apply") { [bindings] connection, logger in
            var seq: Int64 = 0
            if let cursor {
                var position = PostgresBindings()
                position.append(cursor)
                position.append(userId)
                let found = try await connection.query(
                    PostgresQuery(unsafeSQL: NoticeSchema.listPosition(.postgres), binds: position),
                    logger: logger
                )
                guard let listed = try await found.decode(Int64.self).first(where: { _ in true }) else { throw NoticeStoreError.unknownCursor }
                seq = listed
            }
            let announcements = NoticeSchema.announcementChange(command.action, user: "$1", selection: selection("r.", seq), at: millis, .postgres)
            let query = PostgresQuery(
                unsafeSQL: """
                    WITH changed AS (\(change.statement) WHERE recipient = $1 \(selection("", seq)) AND \(live) \(change.unchanged) RETURNING 1),
                        announced AS (\(announcements) RETURNING 1)
                    SELECT (SELECT count(*) FROM changed) + (SELECT count(*) FROM announced)
                    """,
                binds: bindings
            )
            let result = try await connection.query(query, logger: logger)
            return try await Int(result.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    public func counts(userId: String, category: String?, cap: Int) async throws -> NoticeCounts {
        let limit = Int64(max(0, min(cap, Int.max - 1)) + 1)
        var bindings = PostgresBindings()
        bindings.append(userId)
        if let category { bindings.append(category) }
        bindings.append(limit)
        bindings.append(NoticeSchema.nowMillis())
        let query = PostgresQuery(unsafeSQL: NoticeSchema.countsSQL(byCategory: category != nil, .postgres), binds: bindings)
        return try await perform("counts") { connection, logger in
            let result = try await connection.query(query, logger: logger)
            guard let (unread, unseen) = try await result.decode((Int64, Int64).self).first(where: { _ in true }) else {
                return NoticeCounts(unread: 0, unseen: 0, cap: cap)
            }
            return NoticeCounts(unread: Int(unread), unseen: Int(unseen), cap: cap)
        }
    }

    public func undelivered(userId: String, limit: Int) async throws -> [NoticeRow] {
        var bindings = PostgresBindings()
        bindings.append(userId)
        bindings.append(Int64(limit))
        let now = NoticeSchema.nowMillis()
        bindings.append(now)
        bindings.append(NoticeSchema.announcementReplaySince(now))
        let query = PostgresQuery(unsafeSQL: NoticeSchema.replaySQL(.postgres), binds: bindings)
        return try await perform("undelivered") { connection, logger in
            try await Self.storedRows(connection.query(query, logger: logger)).reversed().map(\.row)
        }
    }

    public func notices(_ query: NoticeQuery) async throws -> [StoredNoticeRow] {
        try await perform("notices") { connection, logger in
            var upperSeq = Int64.max
            if let before = query.before {
                var position = PostgresBindings()
                position.append(before)
                position.append(query.userId)
                let cursor = try await connection.query(
                    PostgresQuery(unsafeSQL: NoticeSchema.listPosition(.postgres), binds: position),
                    logger: logger
                )
                guard let seq = try await cursor.decode(Int64.self).first(where: { _ in true }) else {
                    throw NoticeStoreError.unknownCursor
                }
                upperSeq = seq
            }
            var bindings = PostgresBindings()
            bindings.append(query.userId)
            bindings.append(upperSeq)
            bindings.append(Int64(query.limit))
            bindings.append(NoticeSchema.nowMillis())
            if let category = query.category { bindings.append(category) }
            let sql = NoticeSchema.listSQL(query, .postgres)
            return try await Self.storedRows(connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger))
        }
    }

    public func row(_ key: NoticeKey) async throws -> StoredNoticeRow? {
        let recipient = key.recipient ?? ""
        return try await perform("row") { connection, logger in
            let own = try await Self.storedRows(
                connection.query(
                    "SELECT \(unescaped: NoticeSchema.columns) WHERE r.notice_id = \(key.noticeId) AND r.recipient = \(recipient)",
                    logger: logger
                )
            ).first
            guard own == nil, key.recipient != nil else { return own }
            var bindings = PostgresBindings()
            bindings.append(recipient)
            bindings.append(key.noticeId)
            let sql = """
                SELECT \(NoticeSchema.announcementColumns(user: "$1", .postgres))
                WHERE \(NoticeSchema.announced(user: "$1")) AND r.notice_id = $2
                """
            return try await Self.storedRows(connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)).first
        }
    }

    public func recall(noticeId: Int64) async throws -> RecalledNotice? {
        try await perform("recall") { connection, logger in
            let result = try await connection.query(
                """
                WITH recipients AS (DELETE FROM notice_recipient WHERE notice_id = \(noticeId) RETURNING recipient),
                    states AS (DELETE FROM notice_announcement_state WHERE notice_id = \(noticeId)),
                    bodies AS (DELETE FROM notice_body WHERE notice_id = \(noticeId) RETURNING 1)
                SELECT (SELECT count(*) FROM bodies),
                    COALESCE((SELECT array_agg(recipient) FROM recipients WHERE recipient <> ''), ARRAY[]::text[]),
                    EXISTS (SELECT 1 FROM recipients WHERE recipient = '')
                """,
                logger: logger
            )
            guard let (found, recipients, announcement) = try await result.decode((Int64, [String], Bool).self).first(where: { _ in true }),
                found > 0
            else {
                return nil
            }
            return RecalledNotice(recipients: recipients, announcement: announcement)
        }
    }

    public func receipts(noticeId: Int64, after: String?, limit: Int) async throws -> NoticeReceipts? {
        let after = after ?? ""
        return try await perform("receipts") { connection, logger in
            let exists = try await connection.query("SELECT 1 FROM notice_body WHERE notice_id = \(noticeId)", logger: logger)
            guard try await exists.decode(Int32.self).first(where: { _ in true }) != nil else { return nil }
            let broadcast = try await connection.query(
                "SELECT seq FROM notice_recipient WHERE notice_id = \(noticeId) AND recipient = ''",
                logger: logger
            )
            if let seq = try await broadcast.decode(Int64.self).first(where: { _ in true }) {
                return try await Self.announcementReceipts(noticeId: noticeId, seq: seq, after: after, limit: limit, on: connection, logger: logger)
            }
            var bindings = PostgresBindings()
            bindings.append(noticeId)
            let totals = try await connection.query(PostgresQuery(unsafeSQL: NoticeSchema.receiptTotals("$1"), binds: bindings), logger: logger)
            guard let (recipients, delivered, seen, read) = try await totals.decode((Int64, Int64, Int64, Int64).self).first(where: { _ in true })
            else { return nil }
            let rows = try await connection.query(
                """
                SELECT recipient, delivered_at, seen_at, read_at FROM notice_recipient
                WHERE notice_id = \(noticeId) AND recipient COLLATE "C" > \(after) ORDER BY recipient COLLATE "C" LIMIT \(Int64(limit))
                """,
                logger: logger
            )
            var page: [NoticeReceipts.Recipient] = []
            for try await (user, deliveredAt, seenAt, readAt) in rows.decode((String, Int64?, Int64?, Int64?).self) {
                page.append(NoticeReceipts.Recipient(userId: user, deliveredAt: deliveredAt, seenAt: seenAt, readAt: readAt))
            }
            return NoticeReceipts(recipients: Int(recipients), delivered: Int(delivered), seen: Int(seen), read: Int(read), page: page)
        }
    }

    /// An announcement's receipts: the users with a state of it, and how many users' marks passed it.
    private static func announcementReceipts(
        noticeId: Int64,
        seq: Int64,
        after: String,
        limit: Int,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> NoticeReceipts {
        var bindings = PostgresBindings()
        bindings.append(seq)
        bindings.append(noticeId)
        let totals = try await connection.query(
            PostgresQuery(
                unsafeSQL: "SELECT (\(NoticeSchema.announcementDeliveredCount("$1"))), * FROM (\(NoticeSchema.announcementStateTotals("$2"))) totals",
                binds: bindings
            ),
            logger: logger
        )
        var (delivered, recipients, seen, read): (Int64, Int64, Int64, Int64) = (0, 0, 0, 0)
        if let found = try await totals.decode((Int64, Int64, Int64, Int64).self).first(where: { _ in true }) {
            (delivered, recipients, seen, read) = found
        }
        let rows = try await connection.query(
            """
            SELECT recipient, seen_at, read_at FROM notice_announcement_state
            WHERE notice_id = \(noticeId) AND recipient COLLATE "C" > \(after) ORDER BY recipient COLLATE "C" LIMIT \(Int64(limit))
            """,
            logger: logger
        )
        var page: [NoticeReceipts.Recipient] = []
        for try await (user, seenAt, readAt) in rows.decode((String, Int64?, Int64?).self) {
            page.append(NoticeReceipts.Recipient(userId: user, deliveredAt: nil, seenAt: seenAt, readAt: readAt))
        }
        return NoticeReceipts(
            recipients: Int(recipients),
            delivered: Int(delivered),
            seen: Int(seen),
            read: Int(read),
            page: page,
            announcement: true
        )
    }

    public func purge(createdBefore millis: Int64, limit: Int) async throws -> Int {
        try await perform("purge") { connection, logger in
            let deleted = try await connection.query(
                """
                WITH doomed AS (SELECT notice_id FROM notice_body WHERE created_at < \(millis) ORDER BY created_at LIMIT \(limit)),
                    recipients AS (DELETE FROM notice_recipient WHERE notice_id IN (SELECT notice_id FROM doomed)),
                    states AS (DELETE FROM notice_announcement_state WHERE notice_id IN (SELECT notice_id FROM doomed)),
                    marks AS (\(unescaped: NoticeSchema.purgeAnnouncementMarks("\(millis)", "\(limit)"))),
                    bodies AS (DELETE FROM notice_body WHERE notice_id IN (SELECT notice_id FROM doomed) RETURNING 1)
                SELECT count(*) FROM bodies
                """,
                logger: logger
            )
            return try await Int(deleted.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    public func count() async throws -> Int {
        try await perform("count") { connection, logger in
            let counted = try await connection.query("SELECT count(*) FROM notice_recipient", logger: logger)
            return try await Int(counted.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    public func ping() async throws {
        // Assigning a transaction id fails on a read-only server (a standby, or read-only
        // transactions by default): readiness means a commit could succeed, not just a read.
        // Readiness probes want a quick answer: a shorter deadline than other operations.
        try await perform("ping", timeout: min(configuration.queryTimeout, .seconds(2))) { connection, logger in
            _ = try await connection.query("SELECT txid_current()", logger: logger).collect()
        }
    }

    /// Nothing to release: the pool's connections close when ``run()`` returns.
    public func close() async throws {}

    /// Runs one store operation on a pooled connection within ``Configuration/queryTimeout``
    /// (the wait for the connection included), turning whatever postgres-nio throws into a
    /// ``PostgresStoreError``. A deadlock or serialization failure (another node writing the
    /// same rows) is retried at once, up to twice.
    func perform<Result: Sendable>(
        _ operation: String,
        timeout: Duration? = nil,
        on pool: PostgresClient? = nil,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> Result
    ) async throws -> Result {
        let timeout = timeout ?? configuration.queryTimeout
        let (client, logger) = (pool ?? self.client, self.logger)
        var attempt = 0
        while true {
            attempt += 1
            let leased = Flag()
            do {
                return try await withDeadline(timeout, onTimeout: { PostgresStoreError.timedOut(operation, after: timeout) }) {
                    try await client.withConnection { connection in
                        leased.set()
                        return try await body(connection, logger)
                    }
                }
            } catch let error as NoticeStoreError {
                throw error
            } catch {
                let failure = PostgresStoreError(operation: operation, wrapping: error)
                if attempt < 3, let state = failure.sqlState, state == "40P01" || state == "40001" {
                    logger.debug("store operation retried", metadata: ["store.operation": "\(operation)", "store.sqlstate": "\(state)"])
                    continue
                }
                // The pool does not say why it has no connection: ask the server directly.
                if !leased.isSet, let reason = await connectionProblem() {
                    throw PostgresStoreError(operation: operation, reason: "cannot connect: \(reason)")
                }
                throw failure
            }
        }
    }

    /// Rows of ``NoticeSchema/columns``.
    static func storedRows(_ rows: PostgresRowSequence) async throws -> [StoredNoticeRow] {
        var result: [StoredNoticeRow] = []
        for try await (id, recipient, payload, offset, createdAt, category, pushed, deliveredAt, seenAt, readAt, archivedAt, expiresAt, collapseKey)
            in rows.decode((Int64, String, String, Int32?, Int64, String?, Bool, Int64?, Int64?, Int64?, Int64?, Int64?, String?).self)
        {
            result.append(
                StoredNoticeRow(
                    row: NoticeRow(
                        noticeId: id,
                        recipient: recipient.isEmpty ? nil : recipient,
                        body: NoticeBody(template: payload, recipientOffset: offset.map(Int.init)),
                        createdAt: createdAt,
                        category: category,
                        expiresAt: expiresAt,
                        collapseKey: collapseKey,
                        pushed: pushed
                    ),
                    deliveredAt: deliveredAt,
                    seenAt: seenAt,
                    readAt: readAt,
                    archivedAt: archivedAt
                )
            )
        }
        return result
    }
}
