import NoticeStore

/// Reads a service's SQLite file from the test (another connection, as an operator would).
struct NoticeStoreReader {
    let store: SQLiteNoticeStore

    init(path: String) throws {
        store = try SQLiteNoticeStore(path: path)
    }

    func count() async throws -> Int { try await store.count() }

    /// Distinct `title` values of the stored payloads: one per published notice.
    func distinctTitles() async throws -> Int { try await store.distinctPayloadField("title") }

    func close() async throws { try await store.close() }
}
