/// One stored row: a notice for one recipient, or a broadcast notice (`recipient == nil`).
public struct NoticeRow: Sendable, Hashable {
    public var noticeId: Int64
    public var recipient: String?
    /// The JSON a browser receives (``NoticeRecord/payload(for:createdAt:)``).
    public var payload: String
    /// Unix time in milliseconds.
    public var createdAt: Int64
    /// For records published without an `id`: a digest of the queue message, so that a
    /// redelivery of it can find the id assigned the first time.
    public var sourceKey: String?

    public init(noticeId: Int64, recipient: String?, payload: String, createdAt: Int64, sourceKey: String? = nil) {
        self.noticeId = noticeId
        self.recipient = recipient
        self.payload = payload
        self.createdAt = createdAt
        self.sourceKey = sourceKey
    }

    /// The key the store keeps unique.
    public var key: NoticeKey { NoticeKey(noticeId: noticeId, recipient: recipient) }
}

/// The identity of a row: (notice id, recipient).
public struct NoticeKey: Sendable, Hashable {
    public var noticeId: Int64
    public var recipient: String?

    public init(noticeId: Int64, recipient: String?) {
        self.noticeId = noticeId
        self.recipient = recipient
    }
}

/// The durable store of notices (SPEC §6). Implementations are safe to call concurrently.
public protocol NoticeStore: Sendable {
    /// Creates or upgrades the schema.
    func migrate() async throws
    /// Stores `rows` in one transaction and returns the keys that were not stored before
    /// (a redelivered message stores nothing). Throws, having stored nothing, if the
    /// store is unavailable.
    func insert(_ rows: [NoticeRow]) async throws -> Set<NoticeKey>
    /// The notice ids already stored for these source keys (see ``NoticeRow/sourceKey``).
    func noticeIds(forSourceKeys keys: [String]) async throws -> [String: Int64]
    /// Marks rows delivered (their notice was written to, or ACKed by, a session).
    func markDelivered(_ keys: [NoticeKey], at millis: Int64) async throws
    /// Marks the user's notice read; `false` when the user has no such notice.
    func markRead(noticeId: Int64, userId: String, at millis: Int64) async throws -> Bool
    /// The stored row for `key`, if any.
    func row(_ key: NoticeKey) async throws -> StoredNoticeRow?
    /// Deletes at most `limit` rows created before `millis`; returns how many it deleted.
    func purge(createdBefore millis: Int64, limit: Int) async throws -> Int
    /// Number of stored rows.
    func count() async throws -> Int
    /// Succeeds when the store can be read and written.
    func ping() async throws
    /// Releases the connection(s).
    func close() async throws
}

/// A row as read back, with its delivery and read state.
public struct StoredNoticeRow: Sendable, Hashable {
    public var row: NoticeRow
    public var deliveredAt: Int64?
    public var readAt: Int64?

    public init(row: NoticeRow, deliveredAt: Int64?, readAt: Int64?) {
        self.row = row
        self.deliveredAt = deliveredAt
        self.readAt = readAt
    }
}
