import Foundation
import NoticeCore
import Testing

@testable import NoticeStore

/// The behaviour every ``NoticeStore`` must have (SPEC §4, §6, §7), run against each kind of
/// store: the same tests, the same expectations.
@Suite struct NoticeStoreContractTests {
    func row(_ id: Int64, _ user: String?, createdAt: Int64? = nil) -> NoticeRow {
        NoticeRow(noticeId: id, recipient: user, payload: #"{"id":"\#(id)"}"#, createdAt: createdAt ?? 1_000 + id)
    }

    @Test(arguments: StoreKind.allCases)
    func insertIsIdempotentPerIdAndRecipient(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
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

    @Test(arguments: StoreKind.allCases)
    func anInsertMarksEarlierRowsDeliveredInTheSameTransaction(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let one = NoticeKey(noticeId: 1, recipient: "a")
        let two = NoticeKey(noticeId: 2, recipient: "a")
        _ = try await store.insert([row(1, "a"), row(2, "a")])
        let inserted = try await store.insert([row(3, "a"), row(1, "a")], markingDelivered: [one], at: 5_000)
        #expect(inserted == [NoticeKey(noticeId: 3, recipient: "a")])
        #expect(try await store.row(one)?.deliveredAt == 5_000)
        #expect(try await store.row(two)?.deliveredAt == nil)
        #expect(try await store.undelivered(userId: "a", limit: 10).map(\.noticeId) == [2, 3])
        // Marks alone; a row already marked keeps its first delivery time; unknown keys are no-ops.
        let none = try await store.insert([], markingDelivered: [one, two, NoticeKey(noticeId: 99, recipient: "a")], at: 6_000)
        #expect(none.isEmpty)
        #expect(try await store.row(one)?.deliveredAt == 5_000)
        #expect(try await store.row(two)?.deliveredAt == 6_000)
        #expect(try await store.count() == 3)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func rowsThatAreNotPushedAreStoredButNeverReplayed(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        var mail = row(2, "a")
        mail.pushed = false
        _ = try await store.insert([row(1, "a"), mail, row(3, "a")])
        #expect(try await store.undelivered(userId: "a", limit: 10).map(\.noticeId) == [1, 3])
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "a"))?.row == mail)
        #expect(try await store.notices(NoticeQuery(userId: "a", limit: 10)).map(\.row.noticeId) == [3, 2, 1])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func duplicateInsideOneBatchIsStoredOnce(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let inserted = try await store.insert([row(9, "a"), row(9, "a")])
        #expect(inserted.count == 1)
        #expect(try await store.count() == 1)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func sourceKeysFindTheIdAssignedTheFirstTime(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        var first = row(41, "a")
        first.sourceKey = "digest-1"
        _ = try await store.insert([first])
        #expect(try await store.noticeIds(forSourceKeys: ["digest-1", "digest-2"]) == ["digest-1": 41])
        #expect(try await store.noticeIds(forSourceKeys: []) == [:])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func deliveredAndReadMarks(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert([row(1, "a"), row(2, "a")])
        try await store.markDelivered([NoticeKey(noticeId: 1, recipient: "a")], at: 5_000)
        try await store.markDelivered([NoticeKey(noticeId: 1, recipient: "a")], at: 9_000)
        #expect(try await store.row(NoticeKey(noticeId: 1, recipient: "a"))?.deliveredAt == 5_000)
        #expect(try await store.markRead(noticeId: 2, userId: "a", at: 6_000))
        #expect(try await store.markRead(noticeId: 2, userId: "a", at: 8_000))
        #expect(try await store.markRead(noticeId: 2, userId: "b", at: 6_000) == false)
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "a"))?.readAt == 6_000)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func undeliveredIsTheUsersOwnNewestOldestFirstAndBounded(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        // Stored in this order; ids deliberately not monotonic: order is the store's, not the id's.
        let ids: [Int64] = [50, 10, 40, 20, 30]
        _ = try await store.insert(ids.map { row($0, "a") } + [row(60, "b"), row(70, nil)])
        try await store.markDelivered([NoticeKey(noticeId: 40, recipient: "a")], at: 1)
        #expect(try await store.undelivered(userId: "a", limit: 100).map(\.noticeId) == [50, 10, 20, 30])
        // Bounded: the newest two, still oldest first.
        #expect(try await store.undelivered(userId: "a", limit: 2).map(\.noticeId) == [20, 30])
        #expect(try await store.undelivered(userId: "c", limit: 10).isEmpty)
        let newest = try #require(try await store.undelivered(userId: "a", limit: 1).first)
        #expect(newest == row(30, "a"))
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func noticesArePagedNewestFirstByCursor(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let ids: [Int64] = [5, 3, 9, 1, 7]
        _ = try await store.insert(ids.map { row($0, "a") } + [row(2, "b"), row(4, nil)])
        _ = try await store.markRead(noticeId: 9, userId: "a", at: 100)
        // The broadcast 4 is an announcement: in every user's list, in its place.
        let all = try await store.notices(NoticeQuery(userId: "a", limit: 50))
        #expect(all.map(\.row.noticeId) == [4, 7, 1, 9, 3, 5])
        #expect(all.first { $0.row.noticeId == 9 }?.readAt == 100)
        let page1 = try await store.notices(NoticeQuery(userId: "a", limit: 2))
        #expect(page1.map(\.row.noticeId) == [4, 7])
        let page2 = try await store.notices(NoticeQuery(userId: "a", before: 1, limit: 2))
        #expect(page2.map(\.row.noticeId) == [9, 3])
        let unread = try await store.notices(NoticeQuery(userId: "a", unreadOnly: true, before: 1, limit: 2))
        #expect(unread.map(\.row.noticeId) == [3, 5])
        #expect(try await store.notices(NoticeQuery(userId: "c")).map(\.row.noticeId) == [4])
        await #expect(throws: NoticeStoreError.unknownCursor) {
            try await store.notices(NoticeQuery(userId: "a", before: 2))
        }
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func aBigBatchCommitsInOneTransaction(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let rows = (0..<5_000).map { row(Int64($0), "u\($0 % 50)") }
        #expect(try await store.insert(rows).count == 5_000)
        #expect(try await store.count() == 5_000)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentInsertsOfOneNoticeStoreItOnce(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let inserted = try await withThrowingTaskGroup(of: Set<NoticeKey>.self) { group in
            for _ in 0..<8 { group.addTask { try await store.insert((0..<50).map { row(Int64($0), "a") }) } }
            return try await group.reduce(into: [Set<NoticeKey>]()) { $0.append($1) }
        }
        #expect(inserted.reduce(0) { $0 + $1.count } == 50)
        #expect(try await store.count() == 50)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func purgeDeletesOnlyOldRowsInBoundedBatches(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let old = (0..<25).map { row(Int64($0), "a", createdAt: 1_000) }
        let fresh = (100..<105).map { row(Int64($0), "a", createdAt: 9_000) }
        _ = try await store.insert(old + fresh)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 10)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 10)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 5)
        #expect(try await store.purge(createdBefore: 5_000, limit: 10) == 0)
        #expect(try await store.count() == 5)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func migratingTwiceKeepsTheRows(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert([row(1, "a")])
        try await store.migrate()
        try await store.ping()
        #expect(try await store.count() == 1)
        try await store.close()
    }
}

/// SQLite-only behaviour: the file on disk.
@Suite struct SQLiteNoticeStoreTests {
    @Test func createsTheFileInWALModeAndReopens() async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("notice-store-\(UUID().uuidString)/nested/notice.sqlite").path
        let store = try SQLiteNoticeStore(path: path)
        try await store.migrate()
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        _ = try await store.insert([NoticeRow(noticeId: 1, recipient: "a", payload: "{}", createdAt: 1)])
        try await store.close()
        let reopened = try SQLiteNoticeStore(path: path)
        try await reopened.migrate()
        #expect(try await reopened.count() == 1)
        try await reopened.close()
    }
}
