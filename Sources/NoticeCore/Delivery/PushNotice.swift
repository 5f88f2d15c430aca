/// A stored notice on its way to the sessions of its recipient (or of everyone).
public struct PushNotice: Sendable, Hashable {
    public var key: NoticeKey
    /// The JSON body of the MESSAGE frame.
    public var payload: String
    /// When the service took the notice from the queue (for the push latency histogram).
    public var consumedAt: ContinuousClock.Instant

    public init(key: NoticeKey, payload: String, consumedAt: ContinuousClock.Instant = .now) {
        self.key = key
        self.payload = payload
        self.consumedAt = consumedAt
    }

    public var isBroadcast: Bool { key.recipient == nil }
}
