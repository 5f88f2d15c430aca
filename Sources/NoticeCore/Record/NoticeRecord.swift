/// A validated notice record (SPEC §2), as taken from the queue.
public struct NoticeRecord: Sendable, Hashable {
    /// Who a notice is for.
    public enum Audience: Sendable, Hashable {
        /// These users (one or more, without duplicates, in the order given).
        case users([String])
        /// Every session connected at that moment.
        case broadcast
    }

    /// The notice id: the publisher's, or one the service assigned (``idWasAssigned``).
    public var id: Int64
    public var idWasAssigned: Bool
    public var audience: Audience
    /// `sendTarget` as text, if present.
    public var sendTarget: String?
    /// `category`, if present (``NoticeValidator`` bounds it).
    public var category: String?
    /// `expiresAt` as Unix ms, if present: from then on the notice leaves the list, the counts
    /// and replay (docs/inbox.md).
    public var expiresAtMillis: Int64?
    /// `collapseKey`, if present: a newer notice with the same key replaces the user's unread one.
    public var collapseKey: String?
    /// Every field as published, in order (`id` and recipients still as published).
    public var fields: JSONObject

    /// Whether this record is pushed to browsers under the configured push targets
    /// (it is stored either way).
    public func isPushed(pushTargets: Set<String>) -> Bool {
        guard let sendTarget else { return true }
        return pushTargets.contains(sendTarget)
    }

    /// The JSON a browser receives for `recipient` (`nil` for broadcast): every field as
    /// published, `id` and `userId` as strings, `userIds` replaced by the one recipient,
    /// and `createdAt`.
    public func payload(for recipient: String?, createdAt: String) -> String {
        body(createdAt: createdAt).payload(for: recipient)
    }
}
