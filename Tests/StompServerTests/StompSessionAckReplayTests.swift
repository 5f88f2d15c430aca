import NoticeCore
import STOMP
import Testing

@testable import StompServer

/// Replay on SUBSCRIBE and the client ack modes (SPEC §4).
@Suite struct StompSessionAckReplayTests {
    func connected(version: String = "1.2", maxUnacknowledged: Int = 100) -> StompSession {
        var session = StompSession(sessionId: "s", handshakeToken: nil, configuration: .init(maxUnacknowledged: maxUnacknowledged))
        _ = session.receive(StompFrame(.connect, headers: ["accept-version": version, "Authorization": "Bearer t"]))
        _ = session.authenticated(Principal(userId: "7"))
        return session
    }

    func notice(_ id: Int64, _ user: String? = "7") -> PushNotice {
        PushNotice(key: NoticeKey(noticeId: id, recipient: user), payload: #"{"id":"\#(id)"}"#)
    }

    func key(_ id: Int64) -> NoticeKey { NoticeKey(noticeId: id, recipient: "7") }

    @Test func ownRemindSubscriptionsAskForReplayUnlessTurnedOff() {
        var session = connected()
        #expect(session.receive(StompFrame(.subscribe, headers: ["id": "a", "destination": "/notice/7/remind"])) == [.replay(subscriptionId: "a")])
        #expect(session.receive(StompFrame(.subscribe, headers: ["id": "b", "destination": "/notice/remind", "x-replay": "none"])).isEmpty)
        #expect(session.receive(StompFrame(.subscribe, headers: ["id": "c", "destination": "/topic/notice"])).isEmpty)
        let withReceipt = session.receive(StompFrame(.subscribe, headers: ["id": "d", "destination": "/user/notice/remind", "receipt": "r"]))
        #expect(withReceipt == [.send(StompFrame(.receipt, headers: ["receipt-id": "r"])), .replay(subscriptionId: "d")])
    }

    @Test func aReplayedNoticeIsNotSentAgainWhenItArrivesLive() {
        var session = connected()
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "a", "destination": "/notice/remind"]))
        // The live copy of 2 was queued before the subscription; 3 is new.
        let replay = session.replay([notice(1), notice(2)], subscriptionId: "a")
        #expect(replay.frames.map(\.headers["notice-id"]) == ["1", "2"])
        #expect(replay.deliveredOnWrite)
        #expect(session.messages(for: notice(2)).frames.isEmpty)
        #expect(session.messages(for: notice(3)).frames.count == 1)
        // Skipped once only: a second live copy (a redelivery) would be sent.
        #expect(session.messages(for: notice(2)).frames.count == 1)
    }

    @Test func replayOnlyReachesTheSubscriptionThatAskedAndSkipsDuplicates() {
        var session = connected()
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "a", "destination": "/notice/remind", "x-replay": "none"]))
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "b", "destination": "/notice/7/remind", "ack": "client"]))
        let replay = session.replay([notice(1), notice(1), notice(9, "8")], subscriptionId: "b")
        #expect(replay.frames.map(\.headers["subscription"]) == ["b"])
        #expect(!replay.deliveredOnWrite)
        #expect(session.replay([notice(1)], subscriptionId: "gone").frames.isEmpty)
        // The live copy still reaches subscription a, which had no replay.
        #expect(session.messages(for: notice(1)).frames.map(\.headers["subscription"]) == ["a"])
    }

    @Test func clientAckIsCumulativePerSubscription() throws {
        var session = connected()
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "c", "destination": "/notice/remind", "ack": "client", "x-replay": "none"]))
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "i", "destination": "/topic/notice", "ack": "client-individual"]))
        let ids = [notice(1), notice(2), notice(3, nil), notice(4)].flatMap { session.messages(for: $0).frames.map { $0.headers["ack"] ?? "" } }
        #expect(ids.count == 5)  // the broadcast goes to both subscriptions
        // ids: c1, c2, c3, i3, c4 (3 is a broadcast, so both subscriptions have it; its
        // delivery to this user is keyed by its id and the user's: an announcement mark).
        #expect(session.receive(StompFrame(.ack, headers: ["id": ids[2]])) == [.markDelivered([key(1), key(2), key(3)])])
        #expect(session.unacknowledged.map(\.subscriptionId) == ["i", "c"])
        #expect(session.receive(StompFrame(.ack, headers: ["id": ids[0]])).isEmpty)  // already settled
        #expect(session.receive(StompFrame(.ack, headers: ["id": ids[4]])) == [.markDelivered([key(4)])])
        #expect(session.receive(StompFrame(.ack, headers: ["id": ids[3]])) == [.markDelivered([key(3)])])
        #expect(session.unacknowledged.isEmpty)
    }

    @Test func anAnnouncementIsDeliveredToTheUserAndItsEventsReachEveryUser() {
        var session = connected()
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "r", "destination": "/notice/remind", "x-replay": "none"]))
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "e", "destination": "/user/notice/events"]))
        let live = session.messages(for: notice(3, nil))
        #expect(live.deliveredOnWrite && live.frames.map(\.headers["subscription"]) == ["r"])
        // Its delivery is this user's (an announcement mark), an own notice's its own key.
        #expect(session.deliveryKey(of: notice(3, nil)) == key(3))
        #expect(session.deliveryKey(of: notice(4)) == key(4))
        // A recalled announcement's event is for everyone; another user's is not for this one.
        let event = JSONValue.object(JSONObject([("type", .string("recalled"))]))
        #expect(session.messages(for: .inboxEvent(event, for: nil)).frames.map(\.headers["subscription"]) == ["e"])
        #expect(session.messages(for: .inboxEvent(event, for: "8")).frames.isEmpty)
    }

    @Test func clientIndividualAckTakesOneAndNackRecordsNothing() {
        var session = connected()
        _ = session.receive(
            StompFrame(.subscribe, headers: ["id": "i", "destination": "/notice/remind", "ack": "client-individual", "x-replay": "none"])
        )
        let ids = [notice(1), notice(2), notice(3)].flatMap { session.messages(for: $0).frames.map { $0.headers["ack"] ?? "" } }
        #expect(session.receive(StompFrame(.ack, headers: ["id": ids[1]])) == [.markDelivered([key(2)])])
        #expect(
            session.receive(StompFrame(.nack, headers: ["id": ids[0], "receipt": "n"])) == [.send(StompFrame(.receipt, headers: ["receipt-id": "n"]))]
        )
        #expect(session.unacknowledged.map(\.key) == [key(3)])
    }

    @Test func version11AcksByMessageIdAndAckNeedsAnId() {
        var session = connected(version: "1.1")
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "c", "destination": "/notice/remind", "ack": "client", "x-replay": "none"]))
        let frame = session.messages(for: notice(5)).frames[0]
        #expect(frame.headers["ack"] == nil)
        let messageId = frame.headers["message-id"] ?? ""
        #expect(session.receive(StompFrame(.ack, headers: ["subscription": "c", "message-id": messageId])) == [.markDelivered([key(5)])])
        let missing = session.receive(StompFrame(.ack, headers: ["subscription": "c"]))
        #expect(missing.first.map { if case .send(let error) = $0 { error.command == .error } else { false } } == true)
        #expect(session.state == .closed)
    }

    @Test func unacknowledgedTrackingIsBoundedAndUnsubscribeDropsIt() {
        var session = connected(maxUnacknowledged: 4)
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "c", "destination": "/notice/remind", "ack": "client", "x-replay": "none"]))
        for id in 1...10 { _ = session.messages(for: notice(Int64(id))) }
        #expect(session.unacknowledged.map(\.key.noticeId) == [7, 8, 9, 10])
        _ = session.receive(StompFrame(.unsubscribe, headers: ["id": "c"]))
        #expect(session.unacknowledged.isEmpty)
    }
}
