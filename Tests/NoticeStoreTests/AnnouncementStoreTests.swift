import Foundation
import NoticeCore
import Testing

@testable import NoticeStore

/// Announcements on each kind of store (docs/inbox.md): a broadcast in every user's list and
/// counts, each user's state of it made on their first change, replay after each user's
/// announcement mark, and recall, receipts and retention of it.
@Suite struct AnnouncementStoreTests {
    static let hour: Int64 = 3_600_000

    /// The rows the ingest pipeline would store for this record (the real validator and fan-out).
    func rows(_ json: String, createdAt: Int64 = NoticeSchema.nowMillis()) throws -> [NoticeRow] {
        let record = try NoticeValidator().validate(Array(json.utf8)) { 1 }
        let pushTargets: Set<String> = ["SYS"]
        return NoticeFanOut([NoticeFanOut.Item(record: record, redelivered: false)], pushTargets: pushTargets, createdAtMillis: createdAt).rows
    }

    func broadcast(_ id: Int64, category: String? = nil, createdAt: Int64 = NoticeSchema.nowMillis(), extra: String = "") throws -> [NoticeRow] {
        let category = category.map { #","category":"\#($0)""# } ?? ""
        return try rows(#"{"id":\#(id),"broadcast":true,"title":"all \#(id)"\#(category)\#(extra)}"#, createdAt: createdAt)
    }

    func notice(_ id: Int64, _ users: [String]) throws -> [NoticeRow] {
        try rows(#"{"id":\#(id),"userIds":[\#(users.map { "\"\($0)\"" }.joined(separator: ","))],"title":"t\#(id)"}"#)
    }

    func ids(_ store: any NoticeStore, _ user: String, archived: Bool = false, unread: Bool = false) async throws -> [Int64] {
        try await store.notices(NoticeQuery(userId: user, unreadOnly: unread, archived: archived)).map(\.row.noticeId)
    }

    func counts(_ store: any NoticeStore, _ user: String, category: String? = nil) async throws -> [Int] {
        let counts = try await store.counts(userId: user, category: category, cap: 99)
        return [counts.unread, counts.unseen]
    }

    func apply(
        _ store: any NoticeStore,
        _ action: InboxAction,
        _ selection: InboxSelection,
        _ user: String,
        at millis: Int64 = 500
    ) async throws -> Int {
        try await store.apply(InboxCommand(action: action, selection: selection), userId: user, at: millis)
    }

    @Test(arguments: StoreKind.allCases)
    func anAnnouncementIsInEveryInboxInItsPlaceWithEachUsersOwnState(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert(try notice(1, ["a"]) + broadcast(2, category: "news") + notice(3, ["a", "b"]))
        #expect(try await ids(store, "a") == [3, 2, 1])
        #expect(try await ids(store, "b") == [3, 2])
        #expect(try await ids(store, "c") == [2])
        #expect(try await counts(store, "a") == [3, 3])
        #expect(try await counts(store, "c") == [1, 1])
        #expect(try await counts(store, "c", category: "news") == [1, 1])
        #expect(try await counts(store, "c", category: "hr") == [0, 0])
        let listed = try #require(try await store.notices(NoticeQuery(userId: "c")).first)
        #expect(listed.row.recipient == nil && listed.row.category == "news" && listed.readAt == nil && listed.deliveredAt == nil)

        // a reads it: a's state only; once.
        #expect(try await apply(store, .read, .ids([2]), "a") == 1)
        #expect(try await apply(store, .read, .ids([2]), "a") == 0)
        #expect(try await counts(store, "a") == [2, 2])
        #expect(try await counts(store, "c") == [1, 1])
        let read = try #require(try await store.row(NoticeKey(noticeId: 2, recipient: "a")))
        #expect(read.readAt == 500 && read.seenAt == 500 && read.row.recipient == nil)
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "c"))?.readAt == nil)
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: nil)) != nil)
        #expect(try await ids(store, "a", unread: true) == [3, 1])
        #expect(try await ids(store, "c", unread: true) == [2])

        // Clearing what was never set changes nothing; clearing what was set does.
        #expect(try await apply(store, .unread, .ids([2]), "c") == 0)
        #expect(try await apply(store, .unread, .ids([2]), "a") == 1)
        #expect(try await counts(store, "a") == [3, 2])
        #expect(try await apply(store, .seen, .ids([2]), "c") == 1)
        #expect(try await counts(store, "c") == [1, 0])

        // Archive, unarchive, delete: each user's own.
        #expect(try await apply(store, .archive, .ids([2]), "a") == 1)
        #expect(try await ids(store, "a") == [3, 1])
        #expect(try await ids(store, "a", archived: true) == [2])
        #expect(try await counts(store, "a") == [2, 2])
        #expect(try await apply(store, .unarchive, .ids([2]), "a") == 1)
        #expect(try await ids(store, "a") == [3, 2, 1])
        #expect(try await apply(store, .delete, .ids([2]), "a") == 1)
        #expect(try await ids(store, "a") == [3, 1])
        #expect(try await ids(store, "a", archived: true) == [])
        #expect(try await counts(store, "a") == [2, 2])
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "a")) == nil)
        // Deleted is for good: no verb brings it back or counts as a change.
        for action in InboxAction.allCases { #expect(try await apply(store, action, .ids([2]), "a") == 0) }
        #expect(try await ids(store, "a") == [3, 1])
        #expect(try await ids(store, "b") == [3, 2])
        #expect(try await store.markRead(noticeId: 2, userId: "b", at: 600))
        #expect(try await !store.markRead(noticeId: 2, userId: "a", at: 600))
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func upToAndAllTakeAnnouncementsInTheirPlaceAndCategory(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert(
            try broadcast(1, category: "news") + notice(2, ["a"]) + broadcast(3) + notice(4, ["a"]) + broadcast(5, category: "news")
        )
        // "Mark all read up to 3": the own row 2 and the announcements 1 and 3, not 4 or 5.
        #expect(try await apply(store, .read, .upTo(3, category: nil), "a") == 3)
        #expect(try await ids(store, "a", unread: true) == [5, 4])
        // Up to an announcement for a user with no row of their own; per category.
        #expect(try await apply(store, .read, .upTo(5, category: "news"), "b") == 2)
        #expect(try await ids(store, "b", unread: true) == [3])
        #expect(try await apply(store, .archive, .all(category: nil), "c") == 3)
        #expect(try await ids(store, "c") == [])
        #expect(try await counts(store, "c") == [0, 0])
        #expect(try await apply(store, .archive, .all(category: nil), "c") == 0)
        await #expect(throws: NoticeStoreError.unknownCursor) { try await apply(store, .read, .upTo(4, category: nil), "b") }
        // A page cursor may be an announcement too.
        #expect(try await store.notices(NoticeQuery(userId: "a", before: 3)).map(\.row.noticeId) == [2, 1])
        #expect(try await store.notices(NoticeQuery(userId: "a", category: "news")).map(\.row.noticeId) == [5, 1])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func aUsersOwnRowOfTheSameNoticeTakesTheAnnouncementsPlace(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert(try broadcast(1))
        _ = try await store.insert(try rows(#"{"id":1,"userId":"a","title":"for a too"}"#))
        #expect(try await ids(store, "a") == [1])
        #expect(try await store.notices(NoticeQuery(userId: "a")).first?.row.recipient == "a")
        #expect(try await counts(store, "a") == [1, 1])
        #expect(try await apply(store, .read, .ids([1]), "a") == 1)
        #expect(try await counts(store, "a") == [0, 0])
        #expect(try await counts(store, "b") == [1, 1])
        #expect(try await store.undelivered(userId: "a", limit: 10).map(\.recipient) == ["a"])
        // Deleting it deletes a's row and the announcement for a (both stores alike).
        #expect(try await apply(store, .delete, .ids([1]), "a") == 2)
        #expect(try await ids(store, "a") == [])
        #expect(try await ids(store, "b") == [1])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func replaySendsEachUserTheAnnouncementsAfterTheirMark(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let now = NoticeSchema.nowMillis()
        func replayed(_ user: String, limit: Int = 10) async throws -> [Int64] {
            try await store.undelivered(userId: user, limit: limit).map(\.noticeId)
        }
        // A user never delivered an announcement gets the last day's: 2 and 3, not 1.
        _ = try await store.insert(try broadcast(1, createdAt: now - 25 * Self.hour) + broadcast(2, createdAt: now - Self.hour) + broadcast(3))
        _ = try await store.insert(try broadcast(4, extra: #","sendTarget":"MAIL""#))
        #expect(try await replayed("a") == [2, 3])
        #expect(try await store.undelivered(userId: "a", limit: 10).allSatisfy { $0.recipient == nil })
        // Delivered to a: a's mark moves to 3 (and never back to 2); b is untouched.
        try await store.markDelivered([NoticeKey(noticeId: 3, recipient: "a")], at: now)
        try await store.markDelivered([NoticeKey(noticeId: 2, recipient: "a")], at: now)
        #expect(try await replayed("a") == [])
        #expect(try await replayed("b") == [2, 3])
        // After the mark, age does not matter; own rows and announcements in one order, newest `limit`.
        _ = try await store.insert(try broadcast(5, createdAt: now - 48 * Self.hour) + notice(6, ["a"]) + broadcast(7))
        #expect(try await replayed("a") == [5, 6, 7])
        #expect(try await replayed("a", limit: 2) == [6, 7])
        // Read or archived before it was shown: not popped up.
        #expect(try await apply(store, .read, .ids([5]), "a") == 1)
        #expect(try await apply(store, .archive, .ids([7]), "a") == 1)
        #expect(try await replayed("a") == [6])
        // The ingest's batch carries marks too.
        _ = try await store.insert([], markingDelivered: [NoticeKey(noticeId: 7, recipient: "b"), NoticeKey(noticeId: 6, recipient: "a")], at: now)
        #expect(try await replayed("a") == [])
        #expect(try await replayed("b") == [])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func recallReceiptsAndRetentionOfAnAnnouncement(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let now = NoticeSchema.nowMillis()
        _ = try await store.insert(try broadcast(1, createdAt: 100) + broadcast(2))
        try await store.markDelivered(["a", "b", "d"].map { NoticeKey(noticeId: 2, recipient: $0) }, at: now)
        try await store.markDelivered([NoticeKey(noticeId: 1, recipient: "e")], at: 100)
        #expect(try await apply(store, .read, .ids([2]), "c") == 1)
        #expect(try await apply(store, .seen, .ids([2]), "a") == 1)
        #expect(try await apply(store, .delete, .ids([2]), "b") == 1)
        #expect(try await apply(store, .read, .ids([1]), "a") == 1)
        let receipts = try #require(try await store.receipts(noticeId: 2, after: nil, limit: 2))
        #expect(receipts.announcement)
        #expect(receipts.recipients == 3 && receipts.delivered == 3 && receipts.seen == 2 && receipts.read == 1)
        #expect(
            receipts.page == [
                NoticeReceipts.Recipient(userId: "a", deliveredAt: nil, seenAt: 500, readAt: nil),
                NoticeReceipts.Recipient(userId: "b", deliveredAt: nil, seenAt: nil, readAt: nil),
            ]
        )
        #expect(try await store.receipts(noticeId: 2, after: "b", limit: 2)?.page.map(\.userId) == ["c"])
        // One mark per user: "delivered" counts the users shown it or a later one.
        #expect(try await store.receipts(noticeId: 1, after: nil, limit: 5)?.delivered == 4)

        // Retention takes announcement 1 with its states, and e's mark (last moved at 100).
        #expect(try await store.purge(createdBefore: 1_000, limit: 10) == 1)
        #expect(try await kind.integer("SELECT count(*) FROM notice_announcement_state WHERE notice_id = 1", on: store) == 0)
        #expect(try await kind.integer("SELECT count(*) FROM notice_announcement_delivered", on: store) == 3)
        // A recall takes announcement 2 from every inbox, with every user's state of it.
        #expect(try await store.recall(noticeId: 2) == RecalledNotice(recipients: [], announcement: true))
        #expect(try await kind.integer("SELECT count(*) FROM notice_announcement_state", on: store) == 0)
        #expect(try await ids(store, "c") == [])
        #expect(try await counts(store, "c") == [0, 0])
        #expect(try await store.count() == 0)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func expiredAnnouncementsLeaveListCountsReplayAndCommands(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let now = NoticeSchema.nowMillis()
        _ = try await store.insert(try broadcast(1, extra: #","expiresAt":\#(now - 1)"#) + broadcast(2, extra: #","expiresAt":\#(now + Self.hour)"#))
        #expect(try await ids(store, "a") == [2])
        #expect(try await counts(store, "a") == [1, 1])
        #expect(try await store.undelivered(userId: "a", limit: 10).map(\.noticeId) == [2])
        #expect(try await apply(store, .read, .all(category: nil), "a", at: now) == 1)
        #expect(try await kind.integer("SELECT count(*) FROM notice_announcement_state WHERE notice_id = 1", on: store) == 0)
        try await store.close()
    }
}
