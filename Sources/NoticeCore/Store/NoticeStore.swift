/// One stored row: a notice for one recipient, or a broadcast notice (`recipient == nil`).
/// The rows of one notice share its ``body`` (stored once, SPEC §6).
public struct NoticeRow: Sendable, Hashable {
    public var noticeId: Int64
    public var recipient: String?
    /// The notice's JSON, shared by all its recipients.
    public var body: NoticeBody
    /// Unix time in milliseconds.
    public var createdAt: Int64
    /// The record's `category`, if any.
    public var category: String?
    /// Unix ms from which the row is out of the list, the counts and replay.
    public var expiresAt: Int64?
    /// A newer row of the same recipient and key replaces this one while it is unread.
    public var collapseKey: String?
    /// For records published without an `id`: a digest of the queue message, so that a
    /// redelivery of it can find the id assigned the first time.
    public var sourceKey: String?
    /// `false` for a record whose `sendTarget` is not one of `NOTICE_PUSH_TARGETS` (SPEC §2):
    /// stored and listed, never sent to a browser, so never replayed either.
    public var pushed: Bool

    public init(
        noticeId: Int64,
        recipient: String?,
        body: NoticeBody,
        createdAt: Int64,
        category: String? = nil,
        expiresAt: Int64? = nil,
        collapseKey: String? = nil,
        sourceKey: String? = nil,
        pushed: Bool = true
    ) {
        self.noticeId = noticeId
        self.recipient = recipient
        self.body = body
        self.createdAt = createdAt
        self.category = category
        self.expiresAt = expiresAt
        self.collapseKey = collapseKey
        self.sourceKey = sourceKey
        self.pushed = pushed
    }

    /// A row whose JSON is `payload` as it is.
    public init(noticeId: Int64, recipient: String?, payload: String, createdAt: Int64, sourceKey: String? = nil, pushed: Bool = true) {
        self.init(
            noticeId: noticeId,
            recipient: recipient,
            body: NoticeBody(verbatim: payload),
            createdAt: createdAt,
            sourceKey: sourceKey,
            pushed: pushed
        )
    }

    /// The JSON a browser receives (``NoticeRecord/payload(for:createdAt:)``).
    public var payload: String { body.payload(for: recipient) }

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
    /// Stores `rows` and marks `delivered` delivered at `millis` (as ``markDelivered(_:at:)``)
    /// in one transaction, and returns the keys of `rows` that were not stored before (a
    /// redelivered message stores nothing): what is pushed. A row that a later one of the batch
    /// replaces (the same recipient and collapse key) is returned but not stored, as if the
    /// rows had come one by one. Throws, having changed nothing, if the store is
    /// unavailable. The ingest pipeline brings the delivered marks gathered since its last
    /// batch along, so that they take no transaction (and no turn at the writer) of their own.
    func insert(_ rows: [NoticeRow], markingDelivered delivered: [NoticeKey], at millis: Int64) async throws -> Set<NoticeKey>
    /// The notice ids already stored for these source keys (see ``NoticeRow/sourceKey``).
    func noticeIds(forSourceKeys keys: [String]) async throws -> [String: Int64]
    /// Marks rows delivered (their notice was written to, or ACKed by, a session). The key of
    /// an announcement delivered to a user is (its id, the user): it has no row of theirs, so
    /// it moves their announcement mark instead (docs/inbox.md), which replay starts after.
    func markDelivered(_ keys: [NoticeKey], at millis: Int64) async throws
    /// Applies an inbox state change to the user's own rows and to the announcements in their
    /// inbox (whose state of the user's is made on their first change), and returns how many
    /// it changed: one already in that state does not count.
    /// Throws ``NoticeStoreError/unknownCursor`` when an ``InboxSelection/upTo(_:category:)``
    /// names no notice of the user.
    func apply(_ command: InboxCommand, userId: String, at millis: Int64) async throws -> Int
    /// The user's unread and unseen rows and announcements that are not archived (in
    /// `category`, when given), each counted up to `cap + 1` from an index (``NoticeCounts``).
    func counts(userId: String, category: String?, cap: Int) async throws -> NoticeCounts
    /// The newest `limit` of the user's own pushed rows not yet delivered and of the pushed
    /// announcements after their announcement mark (unread, not archived; with no mark, those of
    /// the last day), oldest first: what a session replays on SUBSCRIBE (SPEC §4). With more
    /// than `limit`, the older ones are left out, so what a user is shown runs on without a
    /// hole into live notices. An announcement comes as the broadcast row (no recipient).
    func undelivered(userId: String, limit: Int) async throws -> [NoticeRow]
    /// A page of the user's own rows and announcements, newest first (the HTTP API, SPEC §7);
    /// an announcement comes as the broadcast row with the user's state. Throws
    /// ``NoticeStoreError/unknownCursor`` when `query.before` is not a notice of the user.
    func notices(_ query: NoticeQuery) async throws -> [StoredNoticeRow]
    /// The stored row for `key`, if any; for (an announcement's id, a user): the announcement
    /// with the user's state, unless they deleted it.
    func row(_ key: NoticeKey) async throws -> StoredNoticeRow?
    /// Recalls a notice: deletes its body, every recipient's row and every user's state of it
    /// (an announcement). `nil` when there is no such notice.
    func recall(noticeId: Int64) async throws -> RecalledNotice?
    /// Who a notice was for and how far it got: totals, and up to `limit` recipients after
    /// `after` in user id order. `nil` when there is no such notice.
    func receipts(noticeId: Int64, after: String?, limit: Int) async throws -> NoticeReceipts?
    /// Deletes at most `limit` notices created before `millis`, each with all its rows and
    /// states, and at most `limit` announcement marks last moved before it; returns how many
    /// notices it deleted.
    func purge(createdBefore millis: Int64, limit: Int) async throws -> Int
    /// Number of stored rows (a notice's recipients; a broadcast is one).
    func count() async throws -> Int
    /// Succeeds when the store can be read and written.
    func ping() async throws
    /// Releases the connection(s).
    func close() async throws
}

extension NoticeStore {
    /// Stores `rows` in one transaction (see ``insert(_:markingDelivered:at:)``).
    public func insert(_ rows: [NoticeRow]) async throws -> Set<NoticeKey> {
        try await insert(rows, markingDelivered: [], at: 0)
    }

    /// Marks the user's notice read (and seen); `false` when the user has no such notice.
    public func markRead(noticeId: Int64, userId: String, at millis: Int64) async throws -> Bool {
        let command = InboxCommand(action: .read, selection: .ids([noticeId]))
        if try await apply(command, userId: userId, at: millis) > 0 { return true }
        // Already read counts as found: only another user's (or no) notice is `false`.
        return try await row(NoticeKey(noticeId: noticeId, recipient: userId)) != nil
    }
}

/// A row as read back, with its delivery and inbox state (Unix ms, `nil`: not yet).
public struct StoredNoticeRow: Sendable, Hashable {
    public var row: NoticeRow
    public var deliveredAt: Int64?
    public var seenAt: Int64?
    public var readAt: Int64?
    public var archivedAt: Int64?

    public init(row: NoticeRow, deliveredAt: Int64?, seenAt: Int64? = nil, readAt: Int64?, archivedAt: Int64? = nil) {
        self.row = row
        self.deliveredAt = deliveredAt
        self.seenAt = seenAt
        self.readAt = readAt
        self.archivedAt = archivedAt
    }
}

/// What a recall took away.
public struct RecalledNotice: Sendable, Hashable {
    /// The users whose own row it deleted.
    public var recipients: [String]
    /// It was an announcement (a broadcast): it left every user's inbox.
    public var announcement: Bool

    public init(recipients: [String], announcement: Bool) {
        self.recipients = recipients
        self.announcement = announcement
    }
}

/// A notice's recipients and their state (`GET /api/notices/<id>/receipts`). For an
/// announcement: the users who have a state of it (seen, read, archived or deleted; to everyone
/// else it is unseen), and ``delivered`` the users whose announcement mark has reached it (shown
/// it or a later announcement: one mark per user, so an upper bound).
public struct NoticeReceipts: Sendable, Hashable {
    public struct Recipient: Sendable, Hashable {
        public var userId: String
        public var deliveredAt: Int64?
        public var seenAt: Int64?
        public var readAt: Int64?

        public init(userId: String, deliveredAt: Int64?, seenAt: Int64?, readAt: Int64?) {
            self.userId = userId
            self.deliveredAt = deliveredAt
            self.seenAt = seenAt
            self.readAt = readAt
        }
    }

    /// Rows of users (for an announcement: users with a state of it), and how many of them are
    /// delivered, seen, read.
    public var recipients: Int
    public var delivered: Int
    public var seen: Int
    public var read: Int
    /// A page of them, in user id order.
    public var page: [Recipient]
    /// The notice is an announcement (a broadcast).
    public var announcement: Bool

    public init(recipients: Int, delivered: Int, seen: Int, read: Int, page: [Recipient], announcement: Bool = false) {
        self.recipients = recipients
        self.delivered = delivered
        self.seen = seen
        self.read = read
        self.page = page
        self.announcement = announcement
    }
}

/// Which of a user's notices to list, newest first (SPEC §7).
public struct NoticeQuery: Sendable, Hashable {
    public var userId: String
    /// Only rows without `read_at`.
    public var unreadOnly: Bool
    /// The archived rows instead of the others.
    public var archived: Bool
    /// Only rows of this category.
    public var category: String?
    /// Only rows stored before this notice of the user (the page cursor); `nil` starts at the newest.
    public var before: Int64?
    public var limit: Int

    public init(userId: String, unreadOnly: Bool = false, archived: Bool = false, category: String? = nil, before: Int64? = nil, limit: Int = 50) {
        self.userId = userId
        self.unreadOnly = unreadOnly
        self.archived = archived
        self.category = category
        self.before = before
        self.limit = limit
    }
}

/// Errors a store reports about a request rather than about itself.
public enum NoticeStoreError: Error, Sendable, Hashable {
    /// ``NoticeQuery/before`` or ``InboxSelection/upTo(_:category:)`` names no notice of the user.
    case unknownCursor
}
