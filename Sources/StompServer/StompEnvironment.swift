public import Logging
public import NoticeCore

/// Learns which users have sessions on this node (several nodes: the cluster relay binds this
/// node's queue to them).
public protocol UserPresence: Sendable {
    /// A session of `userId` is opening; returns once notices stored for the user on any node
    /// reach this one.
    func acquire(_ userId: String) async
    /// That session closed.
    func release(_ userId: String)
}

/// What every STOMP connection of the node shares. A class: every connection holds a
/// reference, not a copy.
public final class StompEnvironment: Sendable {
    public let hub: DeliveryHub
    public let verifier: any TokenVerifier
    public let store: any NoticeStore
    /// Inbox state changes (`SEND /app/notices/state`), announced to the user's sessions.
    public let inbox: InboxChanges
    public let marks: DeliveryMarks
    public let presence: (any UserPresence)?
    public let session: StompSession.Configuration
    public let maxFrameBytes: Int
    /// Notices queued for one connection may exceed this only for ``slowReaderGrace``.
    public let maxOutboundBytes: Int
    /// Most stored notices a SUBSCRIBE replays.
    public let replayLimit: Int
    /// How long a connection may stay over ``maxOutboundBytes`` before it is cut off.
    public let slowReaderGrace: Duration
    /// A connection that has not sent CONNECT within this time is closed.
    public let connectTimeout: Duration
    public let metrics: StompMetrics
    public let logger: Logger
    /// How long before its token expires a session is sent `token-expiring` (docs/inbox.md).
    public let tokenExpiringLead: Duration

    public init(
        hub: DeliveryHub,
        verifier: any TokenVerifier,
        store: any NoticeStore,
        inbox: InboxChanges,
        marks: DeliveryMarks,
        presence: (any UserPresence)?,
        session: StompSession.Configuration,
        maxFrameBytes: Int,
        maxOutboundBytes: Int,
        replayLimit: Int,
        slowReaderGrace: Duration = .seconds(3),
        connectTimeout: Duration,
        metrics: StompMetrics,
        logger: Logger,
        tokenExpiringLead: Duration = .seconds(60)
    ) {
        self.tokenExpiringLead = tokenExpiringLead
        self.hub = hub
        self.verifier = verifier
        self.store = store
        self.inbox = inbox
        self.marks = marks
        self.presence = presence
        self.session = session
        self.maxFrameBytes = maxFrameBytes
        self.maxOutboundBytes = maxOutboundBytes
        self.replayLimit = replayLimit
        self.slowReaderGrace = slowReaderGrace
        self.connectTimeout = connectTimeout
        self.metrics = metrics
        self.logger = logger
    }

    /// Bytes from a client that may wait to be decoded before its transport stops reading.
    var inboundLimit: Int {
        let (limit, overflow) = maxFrameBytes.multipliedReportingOverflow(by: 4)
        return overflow ? .max : limit
    }
}
