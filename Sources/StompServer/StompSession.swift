public import NoticeCore
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
        /// Change the user's inbox state (`SEND /app/notices/read`, `SEND /app/notices/state`);
        /// `receipt`: the frame's, whose RECEIPT follows (if the store fails, call
        /// ``inboxChangeFailed(_:receipt:)`` instead of going on).
        case changeInbox(InboxCommand, receipt: String?)
        /// Read the user's counts from the store and send them with ``counts(_:subscriptionId:)``
        /// on this events subscription (a SUBSCRIBE to `/user/notice/events`).
        case sendCounts(subscriptionId: String)
        /// Check this token (`SEND /app/session/token`) and call ``tokenRefreshed(_:)`` or
        /// ``authenticationFailed(message:)``.
        case refreshToken(String)
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
        /// The user's inbox events and counts (`/user/notice/events`, docs/inbox.md).
        case events
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
    public internal(set) var state: State = .awaitingConnect
    /// The version agreed at CONNECT (1.2 until then, for ERROR frames).
    public internal(set) var version: StompVersion = .v1_2
    /// Heart-beat intervals agreed at CONNECT.
    public internal(set) var heartBeat = HeartBeat.Agreement(serverSends: 0, clientSends: 0)
    public internal(set) var principal: Principal?
    public internal(set) var subscriptions: [Subscription] = []

    let handshakeToken: String?
    var messageCounter: UInt64 = 0
    /// The token expires within the warning's lead: an events subscription made now is told.
    public internal(set) var tokenExpiringDue = false
    /// In the order sent (so a cumulative `client` ACK takes a prefix of one subscription's).
    var unacknowledged: [Unacknowledged] = []

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

    /// A token sent on an open session checked out (``Action/refreshToken(_:)``): the session
    /// goes on under it (its expiry and scopes), if it is the same user's; another user's is
    /// refused like a bad token.
    public mutating func tokenRefreshed(_ principal: Principal) -> [Action] {
        guard state == .connected, let current = self.principal else { return [] }
        guard principal.userId == current.userId else {
            return fail("unauthorized", detail: "the new access token is another user's")
        }
        self.principal = principal
        tokenExpiringDue = false
        return []
    }

    /// The token was missing, invalid or expired.
    public mutating func authenticationFailed(message: String = "unauthorized") -> [Action] {
        fail(message, detail: "the access token was not accepted")
    }

    /// A protocol or limit violation found outside a frame (decoder error, heart-beat
    /// timeout, CONNECT deadline, slow reader, session cap, shutdown): ERROR, then close.
    public mutating func fail(_ message: String, detail: String, frame: StompFrame? = nil) -> [Action] {
        fail(message, detail: detail, receipt: frame?.headers["receipt"])
    }

    /// A state change the client asked a RECEIPT for may not be stored (the store failed): an
    /// ERROR naming that receipt instead, then close, since a RECEIPT means stored. Without a
    /// receipt the client is not waiting to know, and the session goes on (`nil`: nothing to do).
    public mutating func inboxChangeFailed(_ reason: String, receipt: String?) -> [Action]? {
        guard let receipt else { return nil }
        // A deadline may pass after the store committed: not stored is what cannot be promised.
        return fail("store unavailable", detail: "the change could not be confirmed stored (\(reason)); send it again", receipt: receipt)
    }

    /// ERROR (naming `receipt`, if any), then close.
    public mutating func fail(_ message: String, detail: String, receipt: String?) -> [Action] {
        guard state != .closed else { return [] }
        state = .closed
        var headers: StompHeaders = ["message": message, "content-type": "text/plain"]
        if let receipt { headers.add("receipt-id", receipt) }
        let error = StompFrame(.error, headers: headers, body: Array(detail.utf8)).withContentLength()
        return [.send(error), .close]
    }
}
