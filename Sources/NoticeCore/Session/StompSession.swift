public import STOMP

/// The server side of one STOMP connection as a value-type state machine (SPEC §4).
///
/// It never does I/O: the connection that drives it feeds it frames, authentication
/// results and notices, and carries out the ``Action``s it returns, in order.
public struct StompSession: Sendable {
    /// Per-connection limits and what the server offers.
    public struct Configuration: Sendable, Hashable {
        /// Heart-beat the server offers both ways, in ms (`NOTICE_HEARTBEAT_MS`).
        public var heartBeatMillis: Int
        public var maxSubscriptions: Int
        /// The `server` header of CONNECTED.
        public var serverName: String
        /// Most messages awaiting an ACK that a connection keeps track of; past it the oldest are
        /// forgotten (they stay undelivered in the store and are replayed on the next SUBSCRIBE).
        public var maxUnacknowledged: Int

        public init(
            heartBeatMillis: Int = 10_000,
            maxSubscriptions: Int = 32,
            serverName: String = "notice-service/1.0",
            maxUnacknowledged: Int = 1_024
        ) {
            self.heartBeatMillis = heartBeatMillis
            self.maxSubscriptions = maxSubscriptions
            self.serverName = serverName
            self.maxUnacknowledged = maxUnacknowledged
        }
    }

    /// What the driver must do next.
    public enum Action: Sendable, Hashable {
        /// Write this frame.
        case send(StompFrame)
        /// Check this token (nil: none was given) and call ``authenticated(_:)`` or
        /// ``authenticationFailed()``.
        case authenticate(token: String?)
        /// Mark the user's notice read (`SEND /app/notices/read`).
        case markRead(noticeId: Int64)
        /// Record these notices as delivered (they were ACKed).
        case markDelivered([NoticeKey])
        /// Read the user's undelivered notices from the store and hand them to
        /// ``replay(_:subscriptionId:)`` before anything else (SPEC §4 replay).
        case replay(subscriptionId: String)
        /// Close the connection (after writing what came before).
        case close
    }

    /// Where a connection is in its life.
    public enum State: Sendable, Hashable {
        case awaitingConnect
        case authenticating
        case connected
        case closed
    }

    /// How a subscription's messages count as delivered.
    public enum AckMode: String, Sendable, Hashable {
        case auto
        case client
        case clientIndividual = "client-individual"
    }

    /// Which notices a subscription receives.
    public enum Feed: Sendable, Hashable {
        /// The user's own notices and broadcasts (`/notice/<uid>/remind` and aliases).
        case remind
        /// Broadcasts only (`/topic/notice`).
        case broadcast
    }

    /// One SUBSCRIBE.
    public struct Subscription: Sendable, Hashable {
        public var id: String
        public var destination: String
        public var feed: Feed
        public var ackMode: AckMode
        /// `x-replay: none` was not given.
        public var replay: Bool
        /// Notices this subscription was sent by replay whose live copy may still be on its way:
        /// each is skipped once when it arrives live.
        var replayed: Set<NoticeKey> = []
    }

    /// A MESSAGE sent on a client-ack subscription, not yet ACKed or NACKed.
    struct Unacknowledged: Sendable, Hashable {
        var messageId: String
        var subscriptionId: String
        var key: NoticeKey
    }

    public let configuration: Configuration
    public let sessionId: String
    public private(set) var state: State = .awaitingConnect
    /// The version agreed at CONNECT (1.2 until then, for ERROR frames).
    public private(set) var version: StompVersion = .v1_2
    /// Heart-beat intervals agreed at CONNECT.
    public private(set) var heartBeat = HeartBeat.Agreement(serverSends: 0, clientSends: 0)
    public private(set) var principal: Principal?
    public private(set) var subscriptions: [Subscription] = []

    private let handshakeToken: String?
    private var connectReceipt: String?
    private var messageCounter: UInt64 = 0
    /// In the order sent (so a cumulative `client` ACK takes a prefix of one subscription's).
    private(set) var unacknowledged: [Unacknowledged] = []

    /// - Parameter handshakeToken: the `access_token` query parameter of the handshake URL.
    public init(sessionId: String, handshakeToken: String?, configuration: Configuration) {
        self.sessionId = sessionId
        self.handshakeToken = handshakeToken
        self.configuration = configuration
    }

    // MARK: Inputs

    /// A frame from the client.
    public mutating func receive(_ frame: StompFrame) -> [Action] {
        switch state {
        case .closed:
            return []
        case .authenticating:
            return fail("unexpected frame", detail: "\(frame.command.rawValue) sent before CONNECTED", frame: frame)
        case .awaitingConnect:
            guard frame.command == .connect || frame.command == .stomp else {
                return fail("not connected", detail: "the first frame must be CONNECT or STOMP", frame: frame)
            }
            return connect(frame)
        case .connected:
            return connected(frame)
        }
    }

    /// The token was valid and the user may open another session.
    public mutating func authenticated(_ principal: Principal) -> [Action] {
        guard state == .authenticating else { return [] }
        self.principal = principal
        state = .connected
        let frame = StompFrame(
            .connected,
            headers: [
                "version": version.rawValue,
                "heart-beat": "\(heartBeat.serverSends),\(heartBeat.clientSends)",
                "server": configuration.serverName,
                "session": sessionId,
                "user-name": principal.userId,
            ]
        )
        return [.send(frame)]
    }

    /// The token was missing, invalid or expired.
    public mutating func authenticationFailed(message: String = "unauthorized") -> [Action] {
        fail(message, detail: "the access token was not accepted")
    }

    /// A protocol or limit violation found outside a frame (decoder error, heart-beat
    /// timeout, CONNECT deadline, slow reader, session cap, shutdown): ERROR, then close.
    public mutating func fail(_ message: String, detail: String, frame: StompFrame? = nil) -> [Action] {
        guard state != .closed else { return [] }
        state = .closed
        var headers: StompHeaders = ["message": message, "content-type": "text/plain"]
        if let receipt = frame?.headers["receipt"] { headers.add("receipt-id", receipt) }
        let error = StompFrame(.error, headers: headers, body: Array(detail.utf8)).withContentLength()
        return [.send(error), .close]
    }

    /// What a live notice becomes on this connection.
    public struct Delivery: Sendable, Hashable {
        /// MESSAGE frames, one per subscription that takes the notice.
        public var frames: [StompFrame]
        /// Whether writing them delivers the notice (SPEC §4): an `ack:auto` subscription took
        /// it. In client ack modes only an ACK does.
        public var deliveredOnWrite: Bool
    }

    /// MESSAGE frames for a live notice, one per subscription that takes it (a subscription
    /// that already had it by replay skips it).
    public mutating func messages(for notice: PushNotice) -> Delivery {
        guard state == .connected, let principal else { return Delivery(frames: [], deliveredOnWrite: false) }
        var delivery = Delivery(frames: [], deliveredOnWrite: false)
        for index in subscriptions.indices where Self.takes(subscriptions[index].feed, notice.key, userId: principal.userId) {
            if subscriptions[index].replayed.remove(notice.key) != nil { continue }
            delivery.frames.append(message(notice, on: subscriptions[index]))
            if subscriptions[index].ackMode == .auto { delivery.deliveredOnWrite = true }
        }
        return delivery
    }

    /// The replay for a SUBSCRIBE (``Action/replay(subscriptionId:)``): MESSAGE frames for the
    /// user's stored, undelivered notices, oldest first. Their live copies, if still on their
    /// way, will not be sent again on that subscription.
    public mutating func replay(_ notices: [PushNotice], subscriptionId: String) -> Delivery {
        guard state == .connected, let principal, let index = subscriptions.firstIndex(where: { $0.id == subscriptionId }) else {
            return Delivery(frames: [], deliveredOnWrite: false)
        }
        var delivery = Delivery(frames: [], deliveredOnWrite: subscriptions[index].ackMode == .auto)
        for notice in notices where Self.takes(subscriptions[index].feed, notice.key, userId: principal.userId) {
            guard subscriptions[index].replayed.insert(notice.key).inserted else { continue }
            delivery.frames.append(message(notice, on: subscriptions[index]))
        }
        return delivery
    }

    private mutating func message(_ notice: PushNotice, on subscription: Subscription) -> StompFrame {
        messageCounter += 1
        let messageId = "\(notice.key.noticeId)-\(sessionId)-\(messageCounter)"
        var headers: StompHeaders = [
            "destination": subscription.destination,
            "subscription": subscription.id,
            "message-id": messageId,
            "notice-id": String(notice.key.noticeId),
            "content-type": "application/json;charset=UTF-8",
        ]
        if subscription.ackMode != .auto {
            if version == .v1_2 { headers.add("ack", messageId) }
            if unacknowledged.count >= configuration.maxUnacknowledged { unacknowledged.removeFirst() }
            unacknowledged.append(Unacknowledged(messageId: messageId, subscriptionId: subscription.id, key: notice.key))
        }
        return StompFrame(.message, headers: headers, body: Array(notice.payload.utf8)).withContentLength()
    }

    /// Whether a subscription of this feed receives the notice with this key.
    private static func takes(_ feed: Feed, _ key: NoticeKey, userId: String) -> Bool {
        switch feed {
        case .remind: key.recipient == nil || key.recipient == userId
        case .broadcast: key.recipient == nil
        }
    }

    // MARK: Frames

    private mutating func connect(_ frame: StompFrame) -> [Action] {
        guard let version = StompVersion.negotiate(acceptVersion: frame.headers["accept-version"]) else {
            var headers: StompHeaders = ["message": "unsupported version", "version": "1.0,1.1,1.2"]
            headers.add("content-type", "text/plain")
            state = .closed
            return [.send(StompFrame(.error, headers: headers, body: Array("supported versions: 1.0, 1.1, 1.2".utf8)).withContentLength()), .close]
        }
        self.version = version
        let clientHeartBeat: HeartBeat
        do {
            clientHeartBeat = try HeartBeat(header: frame.headers["heart-beat"])
        } catch {
            return fail("invalid heart-beat", detail: "heart-beat must be two non-negative integers", frame: frame)
        }
        let offer = HeartBeat(outgoing: configuration.heartBeatMillis, incoming: configuration.heartBeatMillis)
        heartBeat = HeartBeat.negotiate(client: clientHeartBeat, server: offer)
        state = .authenticating
        return [.authenticate(token: Self.bearerToken(frame.headers) ?? handshakeToken)]
    }

    /// The token of an `Authorization: Bearer <token>` header, if any.
    static func bearerToken(_ headers: StompHeaders) -> String? {
        (headers["Authorization"] ?? headers["authorization"]).flatMap(BearerToken.parse)
    }

    private mutating func connected(_ frame: StompFrame) -> [Action] {
        var actions: [Action]
        switch frame.command {
        case .connect, .stomp:
            return fail("already connected", detail: "CONNECT sent twice", frame: frame)
        case .subscribe:
            actions = subscribe(frame)
        case .unsubscribe:
            guard let id = frame.headers["id"] ?? (version == .v1_0 ? frame.headers["destination"] : nil) else {
                return fail("missing header", detail: "UNSUBSCRIBE needs an id header", frame: frame)
            }
            subscriptions.removeAll { $0.id == id }
            unacknowledged.removeAll { $0.subscriptionId == id }
            actions = []
        case .send:
            actions = send(frame)
        case .disconnect:
            state = .closed
            if let receipt = frame.headers["receipt"] {
                return [.send(StompFrame(.receipt, headers: ["receipt-id": receipt])), .close]
            }
            return [.close]
        case .ack, .nack:
            guard let messageId = frame.headers[version == .v1_2 ? "id" : "message-id"] else {
                return fail(
                    "missing header",
                    detail: "\(frame.command.rawValue) needs an \(version == .v1_2 ? "id" : "message-id") header",
                    frame: frame
                )
            }
            let settled = settle(messageId)
            actions = frame.command == .ack && !settled.isEmpty ? [.markDelivered(settled)] : []
        case .begin, .commit, .abort:
            // Transactions are accepted as no-ops: there is nothing to send in one.
            actions = []
        case .connected, .message, .receipt, .error:
            return fail("unexpected frame", detail: "\(frame.command.rawValue) is a server frame", frame: frame)
        }
        if state == .connected, let receipt = frame.headers["receipt"] {
            // A SUBSCRIBE's receipt comes before its replay: the client knows it is subscribed,
            // then receives what was stored for it, then live notices.
            let replay = actions.firstIndex { if case .replay = $0 { true } else { false } }
            actions.insert(.send(StompFrame(.receipt, headers: ["receipt-id": receipt])), at: replay ?? actions.endIndex)
        }
        return actions
    }

    private mutating func subscribe(_ frame: StompFrame) -> [Action] {
        guard let destination = frame.headers["destination"] else {
            return fail("missing header", detail: "SUBSCRIBE needs a destination header", frame: frame)
        }
        guard let id = frame.headers["id"] ?? (version == .v1_0 ? destination : nil) else {
            return fail("missing header", detail: "SUBSCRIBE needs an id header", frame: frame)
        }
        guard !subscriptions.contains(where: { $0.id == id }) else {
            return fail("duplicate subscription", detail: "subscription id already in use", frame: frame)
        }
        guard subscriptions.count < configuration.maxSubscriptions else {
            return fail("too many subscriptions", detail: "at most \(configuration.maxSubscriptions) per connection", frame: frame)
        }
        guard let ackMode = AckMode(rawValue: frame.headers["ack"] ?? "auto") else {
            return fail("invalid header", detail: "ack must be auto, client or client-individual", frame: frame)
        }
        guard let feed = feed(for: destination) else {
            return fail("forbidden", detail: "you may not subscribe to that destination", frame: frame)
        }
        let replay = frame.headers["x-replay"] != "none"
        subscriptions.append(Subscription(id: id, destination: destination, feed: feed, ackMode: ackMode, replay: replay))
        // Only the user's own remind feed has anything to replay (broadcasts have no per-user state).
        return replay && feed == .remind ? [.replay(subscriptionId: id)] : []
    }

    /// Takes an ACKed or NACKed message off the unacknowledged list, with the earlier ones of
    /// its subscription if that is in `client` mode (cumulative), and returns the user's own
    /// notices among them. An unknown id (already settled, or forgotten) settles nothing.
    private mutating func settle(_ messageId: String) -> [NoticeKey] {
        guard let index = unacknowledged.firstIndex(where: { $0.messageId == messageId }) else { return [] }
        let target = unacknowledged[index]
        let cumulative = subscriptions.first { $0.id == target.subscriptionId }?.ackMode == .client
        var settled: [NoticeKey] = []
        var kept: [Unacknowledged] = []
        kept.reserveCapacity(unacknowledged.count)
        for (position, entry) in unacknowledged.enumerated() {
            let takes = position == index || (cumulative && position < index && entry.subscriptionId == target.subscriptionId)
            if takes {
                if entry.key.recipient != nil { settled.append(entry.key) }
            } else {
                kept.append(entry)
            }
        }
        unacknowledged = kept
        return settled
    }

    /// The feed a destination names, or `nil` when this user may not subscribe to it.
    /// Destinations are compared exactly: no decoding, no case folding, no path resolution.
    func feed(for destination: String) -> Feed? {
        guard let userId = principal?.userId else { return nil }
        switch destination {
        case "/notice/remind", "/user/notice/remind", "/notice/\(userId)/remind":
            return .remind
        case "/topic/notice":
            return .broadcast
        default:
            return nil
        }
    }

    private mutating func send(_ frame: StompFrame) -> [Action] {
        guard frame.headers["destination"] == "/app/notices/read" else {
            // The legacy frontend's liveness probe (`send('test')`) and any other SEND: accepted, ignored.
            return []
        }
        guard let text = frame.bodyText, let value = try? JSONParser.parse(Array(text.utf8)),
            case .object(let object) = value, let idValue = object["id"],
            let id = try? NoticeValidator.parseId(idValue)
        else {
            return fail("invalid body", detail: "expected {\"id\":\"<notice id>\"}", frame: frame)
        }
        return [.markRead(noticeId: id)]
    }
}
