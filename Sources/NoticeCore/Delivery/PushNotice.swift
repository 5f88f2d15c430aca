/// A stored notice on its way to the sessions of its recipient (or of everyone).
public struct PushNotice: Sendable, Hashable {
    public var key: NoticeKey
    /// The JSON body of the MESSAGE frame.
    public var payload: String

    public init(key: NoticeKey, payload: String) {
        self.key = key
        self.payload = payload
    }

    public var isBroadcast: Bool { key.recipient == nil }
}
