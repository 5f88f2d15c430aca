import Foundation
import NoticeServer
import NoticeStore

/// PostgreSQL for the service's tests, through `psql` (this target does not see postgres-nio):
/// a fresh database per test on the server `NOTICE_TEST_POSTGRES_URL` names.
enum TestPostgres {
    /// Every test database's name starts with this.
    static let databasePrefix = "notice_test_"

    /// The server's URL; throws, failing the test, when it is unset: these tests never skip.
    static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["NOTICE_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw TestFailure(
                "NOTICE_TEST_POSTGRES_URL is not set: run the tests with scripts/test (it starts PostgreSQL and sets it), "
                    + "or set it to postgres://user:password@host:port/database of a role with CREATEDB"
            )
        }
        return url
    }

    /// A database made by ``createDatabase()``.
    struct Database {
        let name: String
        /// The server URL with this database.
        let url: String

        /// The service's setting for it.
        var configuration: NoticeServiceConfiguration.Database {
            get throws { .postgres(try PostgresNoticeStore.Configuration(url: url)) }
        }
    }

    /// A new empty database.
    static func createDatabase() async throws -> Database {
        let server = try serverURL()
        let name = "\(databasePrefix)\(Int(Date().timeIntervalSince1970))_\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await psql(server, "CREATE DATABASE \(name)")
        guard var components = URLComponents(string: server) else { throw TestFailure("NOTICE_TEST_POSTGRES_URL is not a URL") }
        components.path = "/\(name)"
        guard let url = components.string else { throw TestFailure("cannot build a URL for \(name)") }
        return Database(name: name, url: url)
    }

    /// Drops a database made by ``createDatabase()``, closing its connections.
    static func dropDatabase(_ name: String) async throws {
        _ = try await psql(try serverURL(), "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs `sql` with `psql` and returns its unaligned output; throws with psql's error. Off
    /// the cooperative pool, as every blocking child process of these tests.
    @discardableResult
    static func psql(_ url: String, _ sql: String) async throws -> String {
        try await offThePool { try psqlBlocking(url, sql) }
    }

    private static func psqlBlocking(_ url: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        process.arguments = [url, "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql]
        process.environment = ProcessInfo.processInfo.environment.merging(["PGCONNECT_TIMEOUT": "5"]) { $1 }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problem = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("psql failed: \(String(decoding: problem, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
