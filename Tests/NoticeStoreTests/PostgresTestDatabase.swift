import Foundation
import Logging
import NoticeCore
import PostgresNIO

@testable import NoticeStore

/// A database of its own for one test, created on the server `NOTICE_TEST_POSTGRES_URL`
/// names (scripts/test sets it; the role needs CREATEDB) and dropped by ``drop()``.
struct PostgresTestDatabase: Sendable {
    /// The database's name: `notice_test_<unix seconds>_<random>`, so that leftovers of an
    /// interrupted run can be told apart by age.
    let name: String
    /// The test URL's settings, with this database.
    let configuration: PostgresNoticeStore.Configuration

    /// The server's settings from `NOTICE_TEST_POSTGRES_URL`; throws, failing the test, when
    /// it is unset: a PostgreSQL test must never skip silently.
    static func serverConfiguration() throws -> PostgresNoticeStore.Configuration {
        guard let url = ProcessInfo.processInfo.environment["NOTICE_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw PostgresTestError(
                "NOTICE_TEST_POSTGRES_URL is not set: run the tests with scripts/test (it starts PostgreSQL and sets it), "
                    + "or set it to postgres://user:password@host:port/database of a role with CREATEDB"
            )
        }
        do {
            return try PostgresNoticeStore.Configuration(url: url)
        } catch {
            throw PostgresTestError("NOTICE_TEST_POSTGRES_URL: \(error)")
        }
    }

    /// Creates an empty database (no schema: the store migrates it).
    static func create() async throws -> PostgresTestDatabase {
        let server = try serverConfiguration()
        await sweepOnce(server)
        let name = "notice_test_\(Int(Date().timeIntervalSince1970))_\(UUID().uuidString.prefix(8).lowercased())"
        // Many tests create databases at once; the server may refuse one now and then (it copies
        // a template database). A few tries, then the server's own words.
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await withAdminConnection(server) { connection, logger in
                    try await connection.query("CREATE DATABASE \(unescaped: name)", logger: logger)
                }
                break
            } catch {
                guard attempt < 4 else { throw PostgresTestError("CREATE DATABASE \(name): \(String(reflecting: error))") }
                try await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
        var configuration = server
        configuration.database = name
        return PostgresTestDatabase(name: name, configuration: configuration)
    }

    /// Drops the database, closing any connection still open to it.
    func drop() async throws {
        try await Self.withAdminConnection(configuration) { connection, logger in
            try await connection.query("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: logger)
        }
    }

    /// Runs `body` on one connection to the server's own (test URL's) database.
    static func withAdminConnection(
        _ configuration: PostgresNoticeStore.Configuration,
        _ body: (PostgresConnection, Logger) async throws -> Void
    ) async throws {
        var logger = Logger(label: "test.postgres.admin")
        logger.logLevel = .critical
        let server = try serverConfiguration()
        let connection = try await PostgresConnection.connect(
            configuration: .init(
                host: configuration.host,
                port: configuration.port,
                username: configuration.username,
                password: configuration.password,
                database: server.database,
                tls: .disable
            ),
            id: 1,
            logger: logger
        )
        do {
            try await body(connection, logger)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Leftovers of interrupted runs older than two hours are dropped, once per test process.
    private static func sweepOnce(_ server: PostgresNoticeStore.Configuration) async {
        await sweeper.run(server)
    }

    private static let sweeper = Sweeper()

    private actor Sweeper {
        var done = false

        func run(_ server: PostgresNoticeStore.Configuration) async {
            guard !done else { return }
            done = true
            let cutoff = Int(Date().timeIntervalSince1970) - 7_200
            try? await PostgresTestDatabase.withAdminConnection(server) { connection, logger in
                var stale: [String] = []
                let rows = try await connection.query("SELECT datname FROM pg_database WHERE datname LIKE 'notice\\_test\\_%'", logger: logger)
                for try await name in rows.decode(String.self) {
                    let parts = name.split(separator: "_")
                    if parts.count == 4, let created = Int(parts[2]), created < cutoff { stale.append(name) }
                }
                for name in stale {
                    try await connection.query("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: logger)
                }
            }
        }
    }
}

struct PostgresTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
