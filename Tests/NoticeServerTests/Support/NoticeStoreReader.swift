import Foundation
import NoticeCore
import NoticeStore

/// Reads a service's SQLite file from the test (another connection, as an operator would).
struct NoticeStoreReader {
    let path: String
    let store: SQLiteNoticeStore

    init(path: String) throws {
        self.path = path
        store = try SQLiteNoticeStore(path: path)
    }

    func count() async throws -> Int { try await store.count() }

    /// Distinct `title` values of the stored payloads (one per published notice), asked of
    /// the `sqlite3` shell.
    func distinctTitles() throws -> Int {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [
            path, "SELECT COUNT(DISTINCT json_extract(b.payload, '$.title')) FROM notice_recipient r JOIN notice_body b USING (notice_id)",
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// Waits until at least `count` rows are stored or `timeout` passes; returns the count.
    @discardableResult
    func waitForCount(_ count: Int, timeout: Duration) async throws -> Int {
        try await store.waitForCount(count, timeout: timeout)
    }

    func close() async throws { try await store.close() }
}

extension NoticeStore {
    /// Waits until at least `count` rows are stored or `timeout` passes; returns the count.
    @discardableResult
    func waitForCount(_ count: Int, timeout: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        var stored = try await self.count()
        while stored < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            stored = try await self.count()
        }
        return stored
    }
}
