/// A stored notice on its way to the sessions of its recipient (or of everyone), or an inbox
/// event on its way to the sessions of one user (``Kind/inbox``).
public struct PushNotice: Sendable, Hashable {
    /// What the payload is.
    public enum Kind: Sendable, Hashable {
        /// A notice: for remind (and broadcast) subscriptions, marked delivered once written.
        case notice
        /// An inbox event of ``key``'s recipient, or of everyone (no recipient) (docs/inbox.md):
        /// for the events destination only, never stored, never marked delivered. Its key's
        /// notice id is 0.
        case inbox
    }

    public var key: NoticeKey
    /// The JSON body of the MESSAGE frame.
    public var payload: String
    /// When the service took the notice from the queue (for the push latency histogram).
    public var consumedAt: ContinuousClock.Instant
    public var kind: Kind

    public init(key: NoticeKey, payload: String, consumedAt: ContinuousClock.Instant = .now, kind: Kind = .notice) {
        self.key = key
        self.payload = payload
        self.consumedAt = consumedAt
        self.kind = kind
    }

    /// An inbox event for every session of `userId`, or of every user (`nil`: a change of an
    /// announcement, which is in every inbox).
    public static func inboxEvent(_ event: JSONValue, for userId: String?) -> PushNotice {
        PushNotice(key: NoticeKey(noticeId: 0, recipient: userId), payload: event.serialized, kind: .inbox)
    }

    public var isBroadcast: Bool { key.recipient == nil }
}
