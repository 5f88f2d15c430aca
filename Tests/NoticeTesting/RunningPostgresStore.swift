public import NoticeCore
public import NoticeStore

/// A PostgreSQL store whose pool runs until ``close()``, for a test that uses the store
/// without the service (whose `ServiceGroup` runs the pool). `onClose` runs after the pool
/// has stopped, e.g. to drop the test's database.
public final class RunningPostgresStore: NoticeStore {
    public let store: PostgresNoticeStore
    private let running: Task<Void, Never>
    private let onClose: @Sendable () async throws -> Void

    public init(configuration: PostgresNoticeStore.Configuration, onClose: @escaping @Sendable () async throws -> Void = {}) {
        let store = PostgresNoticeStore(configuration: configuration)
        self.store = store
        self.onClose = onClose
        running = Task { await store.run() }
    }

    public func migrate() async throws { try await store.migrate() }
    public func insert(_ rows: [NoticeRow], markingDelivered delivered: [NoticeKey], at millis: Int64) async throws -> Set<NoticeKey> {
        try await store.insert(rows, markingDelivered: delivered, at: millis)
    }
    public func noticeIds(forSourceKeys keys: [String]) async throws -> [String: Int64] { try await store.noticeIds(forSourceKeys: keys) }
    public func markDelivered(_ keys: [NoticeKey], at millis: Int64) async throws { try await store.markDelivered(keys, at: millis) }
    public func apply(_ command: InboxCommand, userId: String, at millis: Int64) async throws -> Int {
        try await store.apply(command, userId: userId, at: millis)
    }
    public func counts(userId: String, category: String?, cap: Int) async throws -> NoticeCounts {
        try await store.counts(userId: userId, category: category, cap: cap)
    }
    public func recall(noticeId: Int64) async throws -> RecalledNotice? { try await store.recall(noticeId: noticeId) }
    public func receipts(noticeId: Int64, after: String?, limit: Int) async throws -> NoticeReceipts? {
        try await store.receipts(noticeId: noticeId, after: after, limit: limit)
    }
    public func undelivered(userId: String, limit: Int) async throws -> [NoticeRow] { try await store.undelivered(userId: userId, limit: limit) }
    public func notices(_ query: NoticeQuery) async throws -> [StoredNoticeRow] { try await store.notices(query) }
    public func row(_ key: NoticeKey) async throws -> StoredNoticeRow? { try await store.row(key) }
    public func purge(createdBefore millis: Int64, limit: Int) async throws -> Int { try await store.purge(createdBefore: millis, limit: limit) }
    public func count() async throws -> Int { try await store.count() }
    public func ping() async throws { try await store.ping() }

    /// Stops the pool (its connections are closed when this returns), then runs `onClose`.
    public func close() async throws {
        running.cancel()
        await running.value
        try await onClose()
    }
}
