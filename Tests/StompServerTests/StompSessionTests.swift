import NoticeCore
import STOMP
import Testing

@testable import StompServer

@Suite struct StompSessionTests {
    func newSession(token: String? = nil, maxSubscriptions: Int = 32) -> StompSession {
        StompSession(sessionId: "s1", handshakeToken: token, configuration: .init(heartBeatMillis: 10_000, maxSubscriptions: maxSubscriptions))
    }

    func connect(_ headers: StompHeaders = ["accept-version": "1.2", "Authorization": "Bearer tok"]) -> StompFrame {
        StompFrame(.connect, headers: headers)
    }

    func connected(as user: String = "7") -> StompSession {
        var session = newSession()
        _ = session.receive(connect())
        _ = session.authenticated(Principal(userId: user))
        return session
    }

    func sentFrames(_ actions: [StompSession.Action]) -> [StompFrame] {
        actions.compactMap { if case .send(let frame) = $0 { frame } else { nil } }
    }

    @Test func connectAsksForTheBearerToken() {
        var session = newSession()
        #expect(session.receive(connect()) == [.authenticate(token: "tok")])
        #expect(session.state == .authenticating)
    }

    @Test func queryTokenIsTheFallback() {
        var session = newSession(token: "from-url")
        #expect(session.receive(StompFrame(.stomp, headers: ["accept-version": "1.1"])) == [.authenticate(token: "from-url")])
        var other = newSession()
        #expect(other.receive(StompFrame(.connect, headers: ["Authorization": "Basic abc"])) == [.authenticate(token: nil)])
    }

    @Test func connectedCarriesTheNegotiatedValues() throws {
        var session = newSession()
        _ = session.receive(connect(["accept-version": "1.0,1.1", "heart-beat": "5000,20000", "Authorization": "Bearer t"]))
        let frame = try #require(sentFrames(session.authenticated(Principal(userId: "42"))).first)
        #expect(frame.command == .connected)
        #expect(frame.headers["version"] == "1.1")
        #expect(frame.headers["heart-beat"] == "20000,10000")
        #expect(frame.headers["user-name"] == "42")
        #expect(frame.headers["session"] == "s1")
        #expect(frame.headers["server"] != nil)
        #expect(session.heartBeat == .init(serverSends: 20_000, clientSends: 10_000))
    }

    @Test func failedAuthenticationIsErrorThenClose() throws {
        var session = newSession()
        _ = session.receive(connect())
        let actions = session.authenticationFailed()
        #expect(sentFrames(actions).first?.headers["message"] == "unauthorized")
        #expect(actions.last == .close)
        #expect(session.state == .closed)
    }

    @Test func firstFrameMustBeConnect() {
        var session = newSession()
        let actions = session.receive(StompFrame(.subscribe, headers: ["id": "1", "destination": "/notice/remind"]))
        #expect(sentFrames(actions).first?.command == .error)
        #expect(actions.last == .close)
    }

    @Test func unsupportedVersionIsRefused() {
        var session = newSession()
        let actions = session.receive(connect(["accept-version": "2.0"]))
        #expect(sentFrames(actions).first?.headers["version"] == "1.0,1.1,1.2")
        #expect(actions.last == .close)
    }

    @Test(arguments: ["/notice/7/remind", "/notice/remind", "/user/notice/remind", "/topic/notice"])
    func ownDestinationsAreAllowed(_ destination: String) {
        var session = connected(as: "7")
        let actions = session.receive(StompFrame(.subscribe, headers: ["id": "a", "destination": destination, "receipt": "r1", "x-replay": "none"]))
        #expect(actions == [.send(StompFrame(.receipt, headers: ["receipt-id": "r1"]))])
        #expect(session.subscriptions.count == 1)
    }

    @Test(arguments: [
        "/notice/8/remind", "/notice/7/../8/remind", "/notice/%37/remind", "/NOTICE/7/remind", "/notice/7/remind/", "/notice//remind", "/topic/other",
        "/notice/7/remind\u{0}",
    ])
    func otherDestinationsAreForbidden(_ destination: String) {
        var session = connected(as: "7")
        let actions = session.receive(StompFrame(.subscribe, headers: ["id": "a", "destination": destination, "receipt": "r"]))
        let error = sentFrames(actions).first
        #expect(error?.command == .error)
        #expect(error?.headers["message"] == "forbidden")
        #expect(error?.headers["receipt-id"] == "r")
        #expect(actions.last == .close)
    }

    @Test func subscriptionLimit() {
        var session = newSession(maxSubscriptions: 2)
        _ = session.receive(connect())
        _ = session.authenticated(Principal(userId: "7"))
        #expect(session.receive(StompFrame(.subscribe, headers: ["id": "1", "destination": "/notice/remind", "x-replay": "none"])).isEmpty)
        #expect(session.receive(StompFrame(.subscribe, headers: ["id": "2", "destination": "/topic/notice"])).isEmpty)
        let actions = session.receive(StompFrame(.subscribe, headers: ["id": "3", "destination": "/notice/remind"]))
        #expect(sentFrames(actions).first?.headers["message"] == "too many subscriptions")
    }

    @Test func subscribeNeedsAnIdFromVersion11() {
        var session = connected()
        #expect(sentFrames(session.receive(StompFrame(.subscribe, headers: ["destination": "/notice/remind"]))).first?.command == .error)
        var old = newSession()
        _ = old.receive(StompFrame(.connect, headers: ["Authorization": "Bearer t"]))
        _ = old.authenticated(Principal(userId: "7"))
        #expect(old.version == .v1_0)
        #expect(old.receive(StompFrame(.subscribe, headers: ["destination": "/notice/remind"])) == [.replay(subscriptionId: "/notice/remind")])
    }

    @Test func messagesGoToMatchingSubscriptions() throws {
        var session = connected(as: "7")
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "own", "destination": "/notice/7/remind"]))
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "all", "destination": "/topic/notice", "ack": "client"]))
        let own = session.messages(for: PushNotice(key: NoticeKey(noticeId: 5, recipient: "7"), payload: #"{"id":"5"}"#)).frames
        #expect(own.count == 1)
        let message = try #require(own.first)
        #expect(message.headers["subscription"] == "own")
        #expect(message.headers["destination"] == "/notice/7/remind")
        #expect(message.headers["message-id"] != nil)
        #expect(message.headers["content-length"] == "10")
        #expect(message.bodyText == #"{"id":"5"}"#)
        let broadcast = session.messages(for: PushNotice(key: NoticeKey(noticeId: 6, recipient: nil), payload: "{}")).frames
        #expect(broadcast.map { $0.headers["subscription"] } == ["own", "all"])
        #expect(broadcast.last?.headers["ack"] != nil)
        #expect(session.messages(for: PushNotice(key: NoticeKey(noticeId: 7, recipient: "8"), payload: "{}")).frames.isEmpty)
    }

    @Test func onlyAutoAckSubscriptionsCountAsDeliveredOnWrite() {
        var session = connected(as: "7")
        let notice = PushNotice(key: NoticeKey(noticeId: 5, recipient: "7"), payload: "{}")
        #expect(!session.messages(for: notice).deliveredOnWrite)
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "c", "destination": "/notice/remind", "ack": "client"]))
        #expect(!session.messages(for: notice).deliveredOnWrite)
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "a", "destination": "/user/notice/remind"]))
        #expect(session.messages(for: notice).deliveredOnWrite)
    }

    @Test func unsubscribeStopsMessages() {
        var session = connected(as: "7")
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "own", "destination": "/notice/remind"]))
        _ = session.receive(StompFrame(.unsubscribe, headers: ["id": "own"]))
        #expect(session.messages(for: PushNotice(key: NoticeKey(noticeId: 5, recipient: "7"), payload: "{}")).frames.isEmpty)
    }

    @Test func legacyProbeIsAcceptedAndIgnored() {
        var session = connected()
        #expect(session.receive(StompFrame(.send, body: Array("test".utf8))).isEmpty)
        #expect(
            session.receive(StompFrame(.send, headers: ["destination": "/app/x", "receipt": "9"])) == [
                .send(StompFrame(.receipt, headers: ["receipt-id": "9"]))
            ]
        )
        #expect(session.state == .connected)
    }

    @Test func readNotice() {
        var session = connected()
        #expect(
            session.receive(StompFrame(.send, headers: ["destination": "/app/notices/read"], body: Array(#"{"id":"12"}"#.utf8))) == [
                .changeInbox(InboxCommand(action: .read, selection: .ids([12])), receipt: nil)
            ]
        )
        #expect(
            sentFrames(session.receive(StompFrame(.send, headers: ["destination": "/app/notices/read"], body: Array("x".utf8)))).first?.command
                == .error
        )
    }

    /// A RECEIPT means stored: a change the store failed is an ERROR naming the receipt, when
    /// the client asked for one; otherwise the session goes on.
    @Test func aChangeTheStoreFailedIsAnErrorOnlyWhenAReceiptWasAsked() {
        var session = connected()
        #expect(session.inboxChangeFailed("store down", receipt: nil) == nil)
        #expect(session.state == .connected)
        let actions = session.inboxChangeFailed("store down", receipt: "r7")
        let error = sentFrames(actions ?? []).first
        #expect(error?.command == .error)
        #expect(error?.headers["message"] == "store unavailable" && error?.headers["receipt-id"] == "r7")
        #expect(actions?.last == .close && session.state == .closed)
    }

    @Test func inboxStateCommandComesBeforeItsReceipt() {
        var session = connected()
        let body = Array(#"{"action":"archive","upTo":"40","category":"hr"}"#.utf8)
        #expect(
            session.receive(StompFrame(.send, headers: ["destination": "/app/notices/state", "receipt": "r1"], body: body)) == [
                .changeInbox(InboxCommand(action: .archive, selection: .upTo(40, category: "hr")), receipt: "r1"),
                .send(StompFrame(.receipt, headers: ["receipt-id": "r1"])),
            ]
        )
        // A malformed command is an ERROR naming the reason, then close.
        let bad = session.receive(
            StompFrame(.send, headers: ["destination": "/app/notices/state"], body: Array(#"{"action":"shred","all":true}"#.utf8))
        )
        let error = sentFrames(bad).first
        #expect(error?.command == .error)
        #expect(error?.bodyText?.contains("action must be one of") == true)
        #expect(session.state == .closed)
    }

    @Test func disconnectWithReceipt() {
        var session = connected()
        #expect(
            session.receive(StompFrame(.disconnect, headers: ["receipt": "bye"])) == [
                .send(StompFrame(.receipt, headers: ["receipt-id": "bye"])), .close,
            ]
        )
        #expect(session.state == .closed)
        #expect(session.receive(StompFrame(.send)).isEmpty)
    }

    @Test func secondConnectIsAnError() {
        var session = connected()
        #expect(sentFrames(session.receive(connect())).first?.command == .error)
    }

    @Test func bearerParsing() {
        #expect(StompSession.bearerToken(["Authorization": "Bearer abc"]) == "abc")
        #expect(StompSession.bearerToken(["authorization": "bearer  abc "]) == "abc")
        #expect(StompSession.bearerToken(["Authorization": "Bearer"]) == nil)
        #expect(StompSession.bearerToken(["Authorization": "Basic abc"]) == nil)
    }
}

@Suite struct StompSessionEventsTests {
    let base = StompSessionTests()

    @Test func anEventsSubscriptionGetsItsReceiptThenTheCounts() {
        var session = base.connected()
        let actions = session.receive(StompFrame(.subscribe, headers: ["id": "ev", "destination": "/user/notice/events", "receipt": "r"]))
        #expect(actions == [.send(StompFrame(.receipt, headers: ["receipt-id": "r"])), .sendCounts(subscriptionId: "ev")])
        #expect(session.hasEventsSubscription)
        let frames = session.counts(NoticeCounts(unread: 120, unseen: 3, cap: 99), subscriptionId: "ev")
        #expect(frames.count == 1)
        #expect(frames.first?.headers["destination"] == "/user/notice/events")
        #expect(frames.first?.headers["notice-id"] == nil)
        #expect(
            frames.first?.bodyText == #"{"type":"counts","unread":99,"unseen":3,"unreadCapped":true,"unseenCapped":false,"cap":99}"#
        )
    }

    @Test func eventsAndNoticesEachGoToTheirOwnSubscriptions() {
        var session = base.connected(as: "7")
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "remind", "destination": "/notice/7/remind", "x-replay": "none"]))
        _ = session.receive(StompFrame(.subscribe, headers: ["id": "ev", "destination": "/user/notice/events", "ack": "client"]))
        let event = PushNotice.inboxEvent(InboxCommand(action: .archive, selection: .ids([5])).event, for: "7")
        let delivery = session.messages(for: event)
        #expect(delivery.frames.map { $0.headers["subscription"] } == ["ev"])
        #expect(delivery.frames.first?.bodyText == #"{"type":"archived","ids":["5"]}"#)
        // Nothing to deliver, nothing to ACK: an event is not a notice.
        #expect(!delivery.deliveredOnWrite)
        let ack = delivery.frames.first?.headers["ack"] ?? ""
        #expect(session.receive(StompFrame(.ack, headers: ["id": ack])) == [])
        // Another user's event, and a notice, are not for the events subscription.
        #expect(session.messages(for: PushNotice.inboxEvent(.object(JSONObject()), for: "8")).frames.isEmpty)
        let notice = session.messages(for: PushNotice(key: NoticeKey(noticeId: 9, recipient: "7"), payload: "{}"))
        #expect(notice.frames.map { $0.headers["subscription"] } == ["remind"])
        #expect(notice.deliveredOnWrite)
    }
}
