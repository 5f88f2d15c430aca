import Testing

@testable import NoticeCore

@Suite struct NoticeFanOutTests {
    let validator = NoticeValidator()

    func record(_ json: String) throws -> NoticeRecord {
        try validator.validate(Array(json.utf8), assignId: { 999 })
    }

    @Test func oneRowPerRecipientAndOneWithoutForABroadcast() throws {
        let fanOut = NoticeFanOut(
            [
                .init(record: try record(#"{"id":"1","userIds":["a","b"],"title":"t"}"#), redelivered: false),
                .init(record: try record(#"{"id":"2","broadcast":true,"title":"all"}"#), redelivered: false),
            ],
            pushTargets: ["SYS"],
            createdAtMillis: 0
        )
        #expect(
            fanOut.rows.map(\.key) == [.init(noticeId: 1, recipient: "a"), .init(noticeId: 1, recipient: "b"), .init(noticeId: 2, recipient: nil)]
        )
        #expect(fanOut.rows.allSatisfy { $0.createdAt == 0 && $0.pushed })
        #expect(fanOut.rows[0].payload.contains(#""userId":"a""#))
        #expect(fanOut.rows[0].payload.contains(#""createdAt":"1970-01-01T00:00:00.000Z""#))
    }

    @Test func theSameNoticeTwiceInABatchIsOneRow() throws {
        let notice = try record(#"{"id":"5","userId":"a","title":"t"}"#)
        let fanOut = NoticeFanOut(
            [.init(record: notice, redelivered: false), .init(record: notice, redelivered: false)],
            pushTargets: ["SYS"],
            createdAtMillis: 1
        )
        #expect(fanOut.rows.count == 1)
    }

    @Test func aNoticeForAnotherTargetIsStoredNotPushed() throws {
        let fanOut = NoticeFanOut(
            [.init(record: try record(#"{"id":"3","userId":"a","sendTarget":"MAIL"}"#), redelivered: false)],
            pushTargets: ["SYS"],
            createdAtMillis: 1
        )
        #expect(fanOut.rows.count == 1)
        #expect(!fanOut.rows[0].pushed)
        #expect(fanOut.notices(inserted: [fanOut.rows[0].key], retried: false, consumedAt: .now).isEmpty)
    }

    @Test func whatIsPushedIsWhatTheInsertStoredOrAfterARetryWhatCameFirstTime() throws {
        let fresh = try record(#"{"id":"1","userId":"a"}"#)
        let redelivered = try record(#"{"id":"2","userId":"a"}"#)
        let fanOut = NoticeFanOut(
            [.init(record: fresh, redelivered: false), .init(record: redelivered, redelivered: true)],
            pushTargets: ["SYS"],
            createdAtMillis: 1
        )
        let none: Set<NoticeKey> = []
        // Both already stored, first attempt: someone else stored and pushed them.
        #expect(fanOut.notices(inserted: none, retried: false, consumedAt: .now).isEmpty)
        // After a failed attempt that may have committed: the first-time one is ours to push.
        #expect(fanOut.notices(inserted: none, retried: true, consumedAt: .now).map(\.key.noticeId) == [1])
        // Stored by this insert: pushed, in batch order.
        let all = Set(fanOut.rows.map(\.key))
        #expect(fanOut.notices(inserted: all, retried: false, consumedAt: .now).map(\.key.noticeId) == [1, 2])
    }

    @Test func theSourceKeyOfAnAssignedIdIsKeptOnItsRows() throws {
        let assigned = try record(#"{"userIds":["a","b"]}"#)
        #expect(assigned.idWasAssigned)
        let fanOut = NoticeFanOut([.init(record: assigned, redelivered: false, sourceKey: "digest")], pushTargets: [], createdAtMillis: 1)
        #expect(fanOut.rows.map(\.sourceKey) == ["digest", "digest"])
        #expect(fanOut.rows.map(\.noticeId) == [999, 999])
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        #expect(NoticeTimestamp.rfc3339(millis: 0) == "1970-01-01T00:00:00.000Z")
        #expect(NoticeTimestamp.rfc3339(millis: -1) == "1969-12-31T23:59:59.999Z")
        #expect(NoticeTimestamp.rfc3339(millis: 1_795_000_000_123) == "2026-11-18T11:06:40.123Z")
    }
}
