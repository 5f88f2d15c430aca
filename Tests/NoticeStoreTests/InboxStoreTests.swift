import Foundation
import NoticeCore
import Testing

@testable import NoticeStore

/// The inbox on each kind of store (SPEC §6, §7): a body stored once, state changes, counts
/// from their indexes, and the move from the one-table schema.
@Suite struct InboxStoreTests {
    /// The rows the ingest pipeline would store for this record (the real validator and fan-out).
    func rows(_ json: String, createdAt: Int64 = 1_000) throws -> (record: NoticeRecord, rows: [NoticeRow]) {
        let record = try NoticeValidator().validate(Array(json.utf8)) { 1 }
        let fanOut = NoticeFanOut([NoticeFanOut.Item(record: record, redelivered: false)], pushTargets: ["SYS"], createdAtMillis: createdAt)
        return (record, fanOut.rows)
    }

    func notice(_ id: Int64, _ users: [String], category: String? = nil) throws -> [NoticeRow] {
        let list = users.map { "\"\($0)\"" }.joined(separator: ",")
        let category = category.map { #","category":"\#($0)""# } ?? ""
        return try rows(#"{"id":\#(id),"userIds":[\#(list)],"title":"t\#(id)"\#(category)}"#).rows
    }

    @Test(arguments: StoreKind.allCases)
    func aMulticastStoresItsBodyOnceAndEachRecipientGetsItsOwnJSON(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let content = String(repeating: "0123456789", count: 6_000)
        let tricky = "q\"uo\\te\u{1F600}"
        let users = (0..<4_999).map { "u\($0)" } + [tricky]
        let list = users.map { JSONValue.string($0).serialized }.joined(separator: ",")
        let (record, batch) = try rows(#"{"id":"77","userIds":[\#(list)],"title":"all hands","content":"\#(content)"}"#)
        #expect(batch.count == 5_000)
        #expect(try await store.insert(batch).count == 5_000)
        let storage = try await kind.storage(of: store)
        #expect(storage.bodies == 1)
        #expect(storage.rowsWithOwnPayload == 0)
        // 60 KB once, not 300 MB: the body is the content and a few fields.
        #expect(storage.bodyBytes > 60_000 && storage.bodyBytes < 61_000)
        let createdAt = NoticeTimestamp.rfc3339(millis: 1_000)
        for user in ["u0", "u4998", tricky] {
            let stored = try #require(try await store.row(NoticeKey(noticeId: 77, recipient: user)))
            #expect(stored.row.payload == record.payload(for: user, createdAt: createdAt))
            let parsed = try JSONParser.parse(Array(stored.row.payload.utf8))
            guard case .object(let object) = parsed else {
                Issue.record("not an object")
                continue
            }
            #expect(object["userId"] == .string(user))
            #expect(object["userIds"] == nil)
        }
        #expect(try await store.undelivered(userId: "u17", limit: 5).map(\.payload) == [record.payload(for: "u17", createdAt: createdAt)])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func everyVerbOnIdsUpToAnIdAndAllOptionallyPerCategory(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        var batch: [NoticeRow] = []
        for id in Int64(1)...6 {
            let category: String? = id <= 3 ? "hr" : id <= 5 ? "it" : nil
            batch += try notice(id, id <= 3 ? ["a", "b"] : ["a"], category: category)
        }
        batch += try notice(7, ["b"])
        _ = try await store.insert(batch)
        func apply(_ action: InboxAction, _ selection: InboxSelection, _ user: String = "a", at millis: Int64 = 5_000) async throws -> Int {
            try await store.apply(InboxCommand(action: action, selection: selection), userId: user, at: millis)
        }
        func counts(_ user: String = "a", _ category: String? = nil) async throws -> NoticeCounts {
            try await store.counts(userId: user, category: category, cap: 99)
        }
        func list(_ query: NoticeQuery) async throws -> [Int64] { try await store.notices(query).map(\.row.noticeId) }

        #expect(try await counts() == NoticeCounts(unread: 6, unseen: 6, cap: 99))
        #expect(try await apply(.seen, .ids([1, 2]), at: 1_111) == 2)
        #expect(try await apply(.seen, .ids([1, 2])) == 0)
        #expect(try await store.row(NoticeKey(noticeId: 1, recipient: "a"))?.seenAt == 1_111)
        #expect(try await counts().unseen == 4)
        // An id the user has no row for (99; 7 is b's) is skipped; read means seen as well.
        #expect(try await apply(.read, .ids([2, 3, 99, 7]), at: 2_222) == 2)
        #expect(try await counts() == NoticeCounts(unread: 4, unseen: 3, cap: 99))
        let three = try #require(try await store.row(NoticeKey(noticeId: 3, recipient: "a")))
        #expect(three.readAt == 2_222 && three.seenAt == 2_222)
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "a"))?.seenAt == 1_111)
        #expect(try await apply(.unread, .ids([2])) == 1)
        #expect(try await counts().unread == 5)
        // Up to notice 4, category hr: 1 and 2 (3 is read already).
        #expect(try await apply(.read, .upTo(4, category: "hr")) == 2)
        #expect(try await counts("a", "hr") == NoticeCounts(unread: 0, unseen: 0, cap: 99))
        #expect(try await counts("a", "it").unread == 2)
        // Archived rows leave the list and the counts; the archive lists them.
        #expect(try await apply(.archive, .upTo(5, category: nil), at: 3_333) == 5)
        #expect(try await counts() == NoticeCounts(unread: 1, unseen: 1, cap: 99))
        #expect(try await list(NoticeQuery(userId: "a")) == [6])
        #expect(try await list(NoticeQuery(userId: "a", archived: true)) == [5, 4, 3, 2, 1])
        #expect(try await list(NoticeQuery(userId: "a", archived: true, category: "it")) == [5, 4])
        #expect(try await store.row(NoticeKey(noticeId: 5, recipient: "a"))?.archivedAt == 3_333)
        #expect(try await apply(.unarchive, .ids([4])) == 1)
        #expect(try await list(NoticeQuery(userId: "a")) == [6, 4])
        #expect(try await list(NoticeQuery(userId: "a", unreadOnly: true, category: "it")) == [4])
        // Deleting is the user's row only.
        #expect(try await apply(.delete, .ids([6])) == 1)
        #expect(try await store.row(NoticeKey(noticeId: 6, recipient: "a")) == nil)
        #expect(try await apply(.read, .all(category: "it")) == 2)
        #expect(try await counts().unread == 0)
        // b was never touched.
        #expect(try await counts("b") == NoticeCounts(unread: 4, unseen: 4, cap: 99))
        #expect(try await apply(.read, .all(category: nil), "b") == 4)
        #expect(try await counts("b").unread == 0)
        await #expect(throws: NoticeStoreError.unknownCursor) { try await apply(.read, .upTo(7, category: nil)) }
        await #expect(throws: NoticeStoreError.unknownCursor) { try await apply(.read, .upTo(42, category: nil)) }
        // The legacy verb: found (also when read already), another user's is not.
        #expect(try await store.markRead(noticeId: 4, userId: "a", at: 9_000))
        #expect(try await store.markRead(noticeId: 7, userId: "a", at: 9_000) == false)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func countsStopAtTheCapAndMayBePerCategory(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        var batch: [NoticeRow] = []
        for id in Int64(1)...30 { batch += try notice(id, ["a"], category: id <= 10 ? "hr" : nil) }
        _ = try await store.insert(batch)
        #expect(try await store.counts(userId: "a", category: nil, cap: 5) == NoticeCounts(unread: 6, unseen: 6, cap: 5))
        #expect(try await store.counts(userId: "a", category: nil, cap: 100).unread == 30)
        #expect(try await store.counts(userId: "a", category: "hr", cap: 100).unread == 10)
        #expect(try await store.counts(userId: "a", category: "none", cap: 100).unread == 0)
        // Absurd caps neither trap nor fail.
        #expect(try await store.counts(userId: "a", category: nil, cap: .max).unread == 30)
        #expect(try await store.counts(userId: "a", category: nil, cap: -3).unread == 1)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func countsAreAnsweredFromTheirIndexes(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert(try notice(1, ["a"], category: "hr"))
        for (state, index) in [("read_at", "notice_unread"), ("seen_at", "notice_unseen")] {
            let whole = try await kind.plan(
                of: NoticeSchema.countSQL(state, byCategory: false, kind.dialect, now: String(NoticeSchema.nowMillis())),
                ["a", "100"],
                on: store
            )
            #expect(whole.contains(index), "\(whole)")
            let byCategory = try await kind.plan(
                of: NoticeSchema.countSQL(state, byCategory: true, kind.dialect, now: String(NoticeSchema.nowMillis())),
                ["a", "hr", "100"],
                on: store
            )
            #expect(byCategory.contains(index), "\(byCategory)")
        }
        // Announcements' counts walk the broadcast rows of the list's index and look the
        // user's state up by its key.
        let stateIndex = kind == .sqlite ? "sqlite_autoindex_notice_announcement_state_1" : "notice_announcement_state_pkey"
        for state in ["read_at", "seen_at"] {
            let announcements = try await kind.plan(
                of: NoticeSchema.announcementCountSQL(state, byCategory: false, kind.dialect, now: String(NoticeSchema.nowMillis())),
                ["a", "100"],
                on: store
            )
            #expect(announcements.contains("notice_inbox") && announcements.contains(stateIndex), "\(announcements)")
        }
        let now = NoticeSchema.nowMillis()
        // Both counts in one statement, as the stores read them (the clock a parameter).
        let counts = try await kind.plan(
            of: NoticeSchema.countsSQL(byCategory: false, kind.dialect),
            ["a", "100", "\(NoticeSchema.nowMillis())"],
            on: store
        )
        for index in ["notice_unread", "notice_unseen", "notice_inbox", stateIndex] {
            #expect(counts.contains(index), "\(counts)")
        }
        // Replay and the list, as the stores read them: each side from its index.
        let replayPlan = try await kind.plan(of: NoticeSchema.replaySQL(kind.dialect), ["a", "100", "\(now)", "\(now - 1)"], on: store)
        #expect(replayPlan.contains("notice_undelivered") && replayPlan.contains("notice_inbox"), "\(replayPlan)")
        let listPlan = try await kind.plan(
            of: NoticeSchema.listSQL(NoticeQuery(userId: "a"), kind.dialect),
            ["a", "1000", "50", "\(now)"],
            on: store
        )
        #expect(listPlan.contains("notice_inbox"), "\(listPlan)")
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func theMoveFromOneTableKeepsEveryRowItsJSONAndItsState(_ kind: StoreKind) async throws {
        let a7 = #"{"id":"7","userId":"a","title":"hi","createdAt":"1970-01-01T00:00:00.100Z"}"#
        let b7 = #"{"id":"7","userId":"b","title":"hi","createdAt":"1970-01-01T00:00:00.100Z"}"#
        let all8 = #"{"id":"8","broadcast":true}"#
        let a9 = #"{"id":"9","userId":"a","sendTarget":"MAIL"}"#
        let store = try await kind.makeOneTableStore(
            """
            INSERT INTO notice (notice_id, recipient, payload, created_at, delivered_at, read_at, source_key, pushed) VALUES
                (7, 'a', '\(a7)', 100, 150, NULL, NULL, true),
                (7, 'b', '\(b7)', 100, NULL, NULL, NULL, true),
                (8, '', '\(all8)', 200, NULL, NULL, NULL, true),
                (9, 'a', '\(a9)', 300, 310, 320, 'digest-9', false)
            """
        )
        try await store.migrate()
        #expect(try await store.count() == 4)
        let storage = try await kind.storage(of: store)
        #expect(storage.bodies == 3)
        #expect(storage.rowsWithOwnPayload == 4)
        let first = try #require(try await store.row(NoticeKey(noticeId: 7, recipient: "a")))
        #expect(first.row.payload == a7)
        #expect(first.deliveredAt == 150 && first.seenAt == 150 && first.readAt == nil && first.archivedAt == nil)
        #expect(first.row.createdAt == 100 && first.row.pushed)
        let second = try #require(try await store.row(NoticeKey(noticeId: 7, recipient: "b")))
        #expect(second.row.payload == b7)
        #expect(second.deliveredAt == nil && second.seenAt == nil)
        #expect(try await store.row(NoticeKey(noticeId: 8, recipient: nil))?.row.payload == all8)
        let mail = try #require(try await store.row(NoticeKey(noticeId: 9, recipient: "a")))
        #expect(mail.row.payload == a9 && !mail.row.pushed && mail.readAt == 320 && mail.seenAt == 320)
        #expect(try await store.noticeIds(forSourceKeys: ["digest-9"]) == ["digest-9": 9])
        #expect(try await store.undelivered(userId: "b", limit: 10).map(\.payload) == [b7])
        // The moved broadcast 8 is an announcement, unread and unseen by everyone.
        #expect(try await store.counts(userId: "a", category: nil, cap: 99) == NoticeCounts(unread: 2, unseen: 1, cap: 99))
        #expect(try await store.counts(userId: "b", category: nil, cap: 99) == NoticeCounts(unread: 2, unseen: 2, cap: 99))

        // New rows go after the moved ones; notice 7 sent on to c gets c's own JSON (its moved
        // body had no recipient slot), and a and b keep exactly what they had.
        let (record, more) = try rows(#"{"id":"7","userIds":["c"],"title":"hi again"}"#, createdAt: 400)
        _ = try await store.insert(more + notice(10, ["a"]))
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [10, 9, 8, 7])
        let c7 = try #require(try await store.row(NoticeKey(noticeId: 7, recipient: "c")))
        #expect(c7.row.payload == record.payload(for: "c", createdAt: NoticeTimestamp.rfc3339(millis: 400)))
        #expect(try await store.row(NoticeKey(noticeId: 7, recipient: "a"))?.row.payload == a7)
        #expect(try await store.row(NoticeKey(noticeId: 7, recipient: "b"))?.row.payload == b7)
        // Retention still takes a notice with all its rows.
        #expect(try await store.purge(createdBefore: 150, limit: 10) == 1)
        #expect(try await store.row(NoticeKey(noticeId: 7, recipient: "c")) == nil)
        #expect(try await store.count() == 3)
        try await store.close()
    }
    @Test(arguments: StoreKind.allCases)
    func expiredNoticesLeaveTheListTheCountsAndReplayButKeepTheirRow(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let now = NoticeSchema.nowMillis()
        let past = NoticeTimestamp.rfc3339(millis: now - 60_000)
        let future = NoticeTimestamp.rfc3339(millis: now + 3_600_000)
        var batch = try rows(#"{"id":1,"userIds":["a","b"],"expiresAt":"\#(past)"}"#, createdAt: now - 120_000).rows
        batch += try rows(#"{"id":2,"userId":"a","expiresAt":"\#(future)"}"#, createdAt: now).rows
        batch += try rows(#"{"id":3,"userId":"a","expiresAt":\#(now + 3_600_000)}"#, createdAt: now).rows
        _ = try await store.insert(batch)
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [3, 2])
        #expect(try await store.counts(userId: "a", category: nil, cap: 99) == NoticeCounts(unread: 2, unseen: 2, cap: 99))
        #expect(try await store.undelivered(userId: "a", limit: 10).map(\.noticeId) == [2, 3])
        #expect(try await store.undelivered(userId: "b", limit: 10).isEmpty)
        // No command changes an expired row; its row is still there for its receipts.
        #expect(try await store.apply(InboxCommand(action: .read, selection: .all(category: nil)), userId: "a", at: now) == 2)
        let expired = try #require(try await store.row(NoticeKey(noticeId: 1, recipient: "a")))
        #expect(expired.readAt == nil && expired.row.expiresAt == now - 60_000)
        #expect(try await store.receipts(noticeId: 1, after: nil, limit: 10)?.recipients == 2)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func aNewerNoticeReplacesTheUnreadOneOfItsCollapseKey(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert(try rows(#"{"id":1,"userIds":["a","b"],"collapseKey":"build","title":"build 1 failed"}"#).rows)
        _ = try await store.insert(try rows(#"{"id":5,"userId":"a","collapseKey":"other"}"#).rows)
        _ = try await store.markRead(noticeId: 1, userId: "b", at: 10)
        let newer = try rows(#"{"id":2,"userIds":["a","b"],"collapseKey":"build","title":"build 2 failed"}"#).rows
        #expect(try await store.insert(newer).count == 2)
        // a's unread one is replaced; b had read it, so b keeps it; another key is untouched.
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [2, 5])
        #expect(try await store.notices(NoticeQuery(userId: "b")).map(\.row.noticeId) == [2, 1])
        #expect(try await store.counts(userId: "a", category: nil, cap: 99).unread == 2)
        // The same notice again (a redelivery) replaces nothing, itself least of all.
        #expect(try await store.insert(newer).isEmpty)
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [2, 5])
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "a"))?.row.collapseKey == "build")
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func inOneBatchTheLastNoticeOfACollapseKeyIsTheOneStoredAndARetryReplacesNothing(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        func build(_ id: Int64, _ users: String) throws -> [NoticeRow] {
            try rows(#"{"id":\#(id),"userIds":[\#(users)],"collapseKey":"build","title":"build \#(id) failed"}"#).rows
        }
        func key(_ id: Int64, _ user: String) -> NoticeKey { NoticeKey(noticeId: id, recipient: user) }
        // Every row is new, so every key is returned (each is pushed); a's 1 and 2 are replaced
        // by 3 within the batch and never stored; b's 1 has no later row of its key; 4 has another key.
        let batch =
            try build(1, #""a","b""#) + build(2, #""a""#) + build(3, #""a""#)
            + rows(#"{"id":4,"userId":"a","collapseKey":"other"}"#).rows
        #expect(try await store.insert(batch) == [key(1, "a"), key(1, "b"), key(2, "a"), key(3, "a"), key(4, "a")])
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [4, 3])
        #expect(try await store.notices(NoticeQuery(userId: "b")).map(\.row.noticeId) == [1])
        #expect(try await store.counts(userId: "a", category: nil, cap: 99).unread == 2)
        #expect(try await store.receipts(noticeId: 1, after: nil, limit: 10)?.recipients == 1)
        // a reads 3; 5 comes (3 is kept: read); a publisher's retry of 3 replaces nothing.
        #expect(try await store.markRead(noticeId: 3, userId: "a", at: 10))
        #expect(try await store.insert(try build(5, #""a""#)) == [key(5, "a")])
        #expect(try await store.insert(try build(3, #""a""#)).isEmpty)
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [5, 4, 3])
        // A retry of a stored row in one batch with a newer notice: only the newer is new, and it
        // replaces the unread ones (b's 1, a's 5), not a's read 3.
        let mixed = try build(3, #""a""#) + build(1, #""b""#) + build(6, #""a","b""#)
        #expect(try await store.insert(mixed) == [key(6, "a"), key(6, "b")])
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [6, 4, 3])
        #expect(try await store.notices(NoticeQuery(userId: "b")).map(\.row.noticeId) == [6])
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func recallTakesTheNoticeFromEveryRecipient(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert(try notice(1, ["a", "b", "c"]) + notice(2, ["a"]) + rows(#"{"id":3,"broadcast":true}"#).rows)
        #expect(try await store.recall(noticeId: 1).map { Set($0.recipients) } == ["a", "b", "c"])
        #expect(try await store.recall(noticeId: 1) == nil)
        #expect(try await store.recall(noticeId: 3) == RecalledNotice(recipients: [], announcement: true))
        #expect(try await store.recall(noticeId: 99) == nil)
        #expect(try await store.notices(NoticeQuery(userId: "a")).map(\.row.noticeId) == [2])
        #expect(try await store.undelivered(userId: "b", limit: 10).isEmpty)
        #expect(try await store.receipts(noticeId: 1, after: nil, limit: 10) == nil)
        #expect(try await store.count() == 1)
        #expect(try await kind.storage(of: store).bodies == 1)
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func receiptsCountEveryRecipientAndPageThemInUserIdOrder(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        _ = try await store.insert(try notice(1, ["u3", "u0", "u4", "u1", "u2"]))
        try await store.markDelivered(["u0", "u1", "u2"].map { NoticeKey(noticeId: 1, recipient: $0) }, at: 100)
        _ = try await store.markRead(noticeId: 1, userId: "u1", at: 200)
        _ = try await store.apply(InboxCommand(action: .seen, selection: .ids([1])), userId: "u4", at: 300)
        let first = try #require(try await store.receipts(noticeId: 1, after: nil, limit: 2))
        #expect(first.recipients == 5 && first.delivered == 3 && first.seen == 2 && first.read == 1)
        #expect(
            first.page == [
                NoticeReceipts.Recipient(userId: "u0", deliveredAt: 100, seenAt: nil, readAt: nil),
                NoticeReceipts.Recipient(userId: "u1", deliveredAt: 100, seenAt: 200, readAt: 200),
            ]
        )
        #expect(try await store.receipts(noticeId: 1, after: "u1", limit: 2)?.page.map(\.userId) == ["u2", "u3"])
        #expect(try await store.receipts(noticeId: 1, after: "u3", limit: 2)?.page.map(\.userId) == ["u4"])
        #expect(try await store.receipts(noticeId: 2, after: nil, limit: 2) == nil)
        try await store.close()
    }
}

extension StoreKind {
    var dialect: NoticeSchema.Dialect {
        switch self {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }
}
