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
        // The same key twice in a batch is one row: the first wins, as a second INSERT would lose.
        var seen = Set<NoticeKey>()
        let batch = rows.filter { seen.insert($0.key).inserted }
        guard !batch.isEmpty || !delivered.isEmpty else { return [] }
        let markedIds = delivered.map(\.noticeId)
        let markedRecipients = delivered.map { $0.recipient ?? "" }
        let ids = batch.map(\.noticeId)
        let recipients = batch.map { $0.recipient ?? "" }
        let payloads = batch.map(\.payload)
        let createdAts = batch.map(\.createdAt)
        let sourceKeys = batch.map { $0.sourceKey ?? "" }
        let pushed = batch.map(\.pushed)
        // One statement is one transaction; unnest keeps the batch's order, so seq follows it.
        // The UPDATE in WITH runs once, to completion, whether or not the INSERT reads it; it
        // marks rows committed by earlier batches (an empty array: nothing).
        return try await perform("insert") { connection, logger in
            let inserted = try await connection.query(
                """
                WITH delivered AS (
                    UPDATE notice SET delivered_at = \(millis)
                    FROM unnest(\(markedIds)::bigint[], \(markedRecipients)::text[]) AS marked(notice_id, recipient)
                    WHERE notice.notice_id = marked.notice_id AND notice.recipient = marked.recipient AND notice.delivered_at IS NULL
                )
                INSERT INTO notice (notice_id, recipient, payload, created_at, source_key, pushed)
                SELECT id, recipient, payload, created_at, NULLIF(source_key, ''), pushed
                FROM unnest(\(ids)::bigint[], \(recipients)::text[], \(payloads)::text[], \(createdAts)::bigint[], \(sourceKeys)::text[], \(pushed)::boolean[])
                    AS batch(id, recipient, payload, created_at, source_key, pushed)
                ON CONFLICT (notice_id, recipient) DO NOTHING
                RETURNING notice_id, recipient
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
                """
                SELECT DISTINCT ON (source_key) source_key, notice_id FROM notice
                WHERE source_key = ANY(\(unique)::text[]) ORDER BY source_key, seq
                """,
                logger: logger
            )
            var ids: [String: Int64] = [:]
            for try await (key, id) in found.decode((String, Int64).self) { ids[key] = id }
            return ids
        }
    }

    public func markDelivered(_ keys: [NoticeKey], at millis: Int64) async throws {
        guard !keys.isEmpty else { return }
        let ids = keys.map(\.noticeId)
        let recipients = keys.map { $0.recipient ?? "" }
        try await perform("markDelivered") { connection, logger in
            _ = try await connection.query(
                """
                UPDATE notice SET delivered_at = \(millis)
                FROM unnest(\(ids)::bigint[], \(recipients)::text[]) AS marked(notice_id, recipient)
                WHERE notice.notice_id = marked.notice_id AND notice.recipient = marked.recipient AND notice.delivered_at IS NULL
                """,
                logger: logger
            )
        }
    }

    public func markRead(noticeId: Int64, userId: String, at millis: Int64) async throws -> Bool {
        try await perform("markRead") { connection, logger in
            let updated = try await connection.query(
                "UPDATE notice SET read_at = COALESCE(read_at, \(millis)) WHERE notice_id = \(noticeId) AND recipient = \(userId) RETURNING seq",
                logger: logger
            )
            return try await updated.collect().count > 0
        }
    }

    public func undelivered(userId: String, limit: Int) async throws -> [NoticeRow] {
        try await perform("undelivered") { connection, logger in
            try await Self.storedRows(
                connection.query(
                    """
                    SELECT notice_id, recipient, payload, created_at, pushed, delivered_at, read_at FROM notice
                    WHERE recipient = \(userId) AND delivered_at IS NULL AND pushed ORDER BY seq DESC LIMIT \(limit)
                    """,
                    logger: logger
                )
            ).reversed().map(\.row)
        }
    }

    public func notices(_ query: NoticeQuery) async throws -> [StoredNoticeRow] {
        try await perform("notices") { connection, logger in
            var upperSeq = Int64.max
            if let before = query.before {
                let cursor = try await connection.query(
                    "SELECT seq FROM notice WHERE notice_id = \(before) AND recipient = \(query.userId)",
                    logger: logger
                )
                guard let seq = try await cursor.decode(Int64.self).first(where: { _ in true }) else {
                    throw NoticeStoreError.unknownCursor
                }
                upperSeq = seq
            }
            return try await Self.storedRows(
                connection.query(
                    """
                    SELECT notice_id, recipient, payload, created_at, pushed, delivered_at, read_at FROM notice
                    WHERE recipient = \(query.userId) AND seq < \(upperSeq) \(unescaped: query.unreadOnly ? "AND read_at IS NULL" : "")
                    ORDER BY seq DESC LIMIT \(query.limit)
                    """,
                    logger: logger
                )
            )
        }
    }

    public func row(_ key: NoticeKey) async throws -> StoredNoticeRow? {
        let recipient = key.recipient ?? ""
        return try await perform("row") { connection, logger in
            try await Self.storedRows(
                connection.query(
                    """
                    SELECT notice_id, recipient, payload, created_at, pushed, delivered_at, read_at FROM notice
                    WHERE notice_id = \(key.noticeId) AND recipient = \(recipient)
                    """,
                    logger: logger
                )
            ).first
        }
    }

    public func purge(createdBefore millis: Int64, limit: Int) async throws -> Int {
        try await perform("purge") { connection, logger in
            let deleted = try await connection.query(
                """
                WITH doomed AS (SELECT seq FROM notice WHERE created_at < \(millis) ORDER BY created_at LIMIT \(limit)),
                    deleted AS (DELETE FROM notice WHERE seq IN (SELECT seq FROM doomed) RETURNING 1)
                SELECT count(*) FROM deleted
                """,
                logger: logger
            )
            return try await Int(deleted.decode(Int64.self).first(where: { _ in true }) ?? 0)
        }
    }

    public func count() async throws -> Int {
        try await perform("count") { connection, logger in
            let counted = try await connection.query("SELECT count(*) FROM notice", logger: logger)
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

    static func storedRows(_ rows: PostgresRowSequence) async throws -> [StoredNoticeRow] {
        var result: [StoredNoticeRow] = []
        for try await (id, recipient, payload, createdAt, pushed, deliveredAt, readAt) in rows.decode(
            (Int64, String, String, Int64, Bool, Int64?, Int64?).self
        ) {
            result.append(
                StoredNoticeRow(
                    row: NoticeRow(
                        noticeId: id,
                        recipient: recipient.isEmpty ? nil : recipient,
                        payload: payload,
                        createdAt: createdAt,
                        pushed: pushed
                    ),
                    deliveredAt: deliveredAt,
                    readAt: readAt
                )
            )
        }
        return result
    }
}
