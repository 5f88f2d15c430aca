import Logging
import PostgresNIO

extension PostgresNoticeStore {
    /// One schema change: applied once, recorded in `notice_schema_migrations`.
    struct Migration: Sendable {
        let version: Int32
        let name: String
        /// Run in order, in the migration transaction (one statement each: postgres-nio
        /// sends them as prepared statements).
        let statements: [String]
    }

    /// The schema, oldest change first. Never edit one that has shipped: add another.
    static let migrations: [Migration] = [
        Migration(
            version: 1,
            name: "notice",
            statements: [
                // recipient is '' for a broadcast notice (a user id is never empty).
                """
                CREATE TABLE notice (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    notice_id bigint NOT NULL,
                    recipient text NOT NULL,
                    payload text NOT NULL,
                    created_at bigint NOT NULL,
                    delivered_at bigint,
                    read_at bigint,
                    source_key text,
                    UNIQUE (notice_id, recipient)
                )
                """,
                "CREATE INDEX notice_recipient_seq ON notice (recipient, seq)",
                "CREATE INDEX notice_created_at ON notice (created_at)",
                "CREATE INDEX notice_source_key ON notice (source_key) WHERE source_key IS NOT NULL",
                // Replay reads a user's undelivered rows; most rows are delivered, so index only the rest.
                "CREATE INDEX notice_undelivered ON notice (recipient, seq) WHERE delivered_at IS NULL",
            ]
        ),
        Migration(
            version: 2,
            name: "pushed",
            statements: [
                // Rows stored before this count as pushed: which targets were pushed then is not known.
                "ALTER TABLE notice ADD COLUMN pushed boolean NOT NULL DEFAULT true",
                "DROP INDEX notice_undelivered",
                "CREATE INDEX notice_undelivered ON notice (recipient, seq) WHERE delivered_at IS NULL AND pushed",
            ]
        ),
    ]

    /// The advisory lock every node takes to migrate ("notice" in ASCII): one migrates, the
    /// others wait, then find nothing left to do.
    static let migrationLock: Int64 = 0x6E6F_7469_6365

    /// Creates or upgrades the schema in one transaction, under a transaction-scoped advisory
    /// lock (released by COMMIT or ROLLBACK, or when the connection drops, so a crashed node
    /// never leaves it held). Waits up to ``Configuration/migrationTimeout``.
    ///
    /// It runs on a pool of its own, closed before it returns, so that it works whether or not
    /// ``run()`` has started: the service migrates before its services run.
    public func migrate() async throws {
        let pool = Self.makeClient(configuration, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            defer { group.cancelAll() }
            try await migrate(on: pool)
        }
    }

    private func migrate(on pool: PostgresClient) async throws {
        // Fail fast when the server cannot be reached at all (bad host, password…): only the
        // wait for another node's migration deserves the long deadline.
        try await perform("migrate", on: pool) { connection, logger in
            _ = try await connection.query("SELECT 1", logger: logger).collect()
        }
        let timeoutMillis = configuration.migrationTimeout.saturatedMilliseconds
        let applied = try await perform("migrate", timeout: configuration.migrationTimeout, on: pool) { client, logger in
            try await client.withTransaction(logger: logger) { connection -> [Int32] in
                try await connection.query("SET LOCAL statement_timeout = \(unescaped: String(timeoutMillis))", logger: logger)
                try await connection.query("SELECT pg_advisory_xact_lock(\(unescaped: String(Self.migrationLock)))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS notice_schema_migrations (
                        version integer PRIMARY KEY,
                        name text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """,
                    logger: logger
                )
                var done = Set<Int32>()
                for try await version in try await connection.query("SELECT version FROM notice_schema_migrations", logger: logger)
                    .decode(Int32.self)
                {
                    done.insert(version)
                }
                var applied: [Int32] = []
                for migration in Self.migrations where !done.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO notice_schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: logger
                    )
                    applied.append(migration.version)
                }
                return applied
            }
        }
        if !applied.isEmpty {
            logger.info("PostgreSQL schema migrated", metadata: ["store.migrations": "\(applied)"])
        }
    }
}
