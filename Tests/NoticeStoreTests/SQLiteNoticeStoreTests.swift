import Foundation
import NoticeCore
import Testing

@testable import NoticeStore

@Suite struct SQLiteNoticeStoreTests {
    func makeStore() async throws -> (SQLiteNoticeStore, String) {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("notice-store-\(UUID().uuidString)/nested/notice.sqlite").path
        let store = try SQLiteNoticeStore(path: path)
        try await store.migrate()
        return (store, path)
    }

    func row(_ id: Int64, _ user: String?) -> NoticeRow {
        NoticeRow(noticeId: id, recipient: user, payload: #"{"id":"\#(id)"}"#, createdAt: 1_000 + id)
    }

    @Test func createsTheFileInWALModeAndMigratesTwice() async throws {
        let (store, path) = try await makeStore()
        try await store.migrate()
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        try await store.ping()
        try await store.close()
        let reopened = try SQLiteNoticeStore(path: path)
        try await reopened.migrate()
        #expect(try await reopened.count() == 0)
        try await reopened.close()
    }

    @Test func insertIsIdempotentPerIdAndRecipient() async throws {
        let (store, _) = try await makeStore()
        let first = try await store.insert([row(1, "a"), row(1, "b"), row(2, nil)])
        #expect(first == [NoticeKey(noticeId: 1, recipient: "a"), NoticeKey(noticeId: 1, recipient: "b"), NoticeKey(noticeId: 2, recipient: nil)])
        let again = try await store.insert([row(1, "a"), row(2, nil), row(3, "a")])
        #expect(again == [NoticeKey(noticeId: 3, recipient: "a")])
        #expect(try await store.count() == 4)
        let stored = try #require(try await store.row(NoticeKey(noticeId: 2, recipient: nil)))
        #expect(stored.row == row(2, nil))
        #expect(stored.deliveredAt == nil)
        try await store.close()
    }

    @Test func duplicateInsideOneBatchIsStoredOnce() async throws {
        let (store, _) = try await makeStore()
        let inserted = try await store.insert([row(9, "a"), row(9, "a")])
        #expect(inserted.count == 1)
        #expect(try await store.count() == 1)
        try await store.close()
    }

    @Test func deliveredAndReadMarks() async throws {
        let (store, _) = try await makeStore()
        _ = try await store.insert([row(1, "a"), row(2, "a")])
        try await store.markDelivered([NoticeKey(noticeId: 1, recipient: "a")], at: 5_000)
        try await store.markDelivered([NoticeKey(noticeId: 1, recipient: "a")], at: 9_000)
        #expect(try await store.row(NoticeKey(noticeId: 1, recipient: "a"))?.deliveredAt == 5_000)
        #expect(try await store.markRead(noticeId: 2, userId: "a", at: 6_000))
        #expect(try await store.markRead(noticeId: 2, userId: "b", at: 6_000) == false)
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "a"))?.readAt == 6_000)
        try await store.close()
    }

    @Test func aBigBatchCommitsInOneTransaction() async throws {
        let (store, _) = try await makeStore()
        let rows = (0..<5_000).map { row(Int64($0), "u\($0 % 50)") }
        #expect(try await store.insert(rows).count == 5_000)
        #expect(try await store.count() == 5_000)
        try await store.close()
    }
}

@Suite struct RetentionStoreTests {
    @Test func purgeDeletesOnlyOldRowsInBoundedBatches() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("retention-\(UUID().uuidString)/n.sqlite").path
        let store = try SQLiteNoticeStore(path: path)
        try await store.migrate()
        let old = (0..<25).map { NoticeRow(noticeId: Int64($0), recipient: "a", payload: "{}", createdAt: 1_000) }
        let fresh = (100..<105).map { NoticeRow(noticeId: Int64($0), recipient: "a", payload: "{}", createdAt: 9_000) }
        _ = try await store.insert(old + fresh)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 10)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 10)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 5)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 0)
        #expect(try await store.count() == 5)
        try await store.close()
    }
}
