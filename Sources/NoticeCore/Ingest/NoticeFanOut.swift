/// One batch of valid records as the rows the store gets, and the notices pushed once they are
/// committed: one row per (notice, recipient), a broadcast one row without a recipient, the
/// same notice twice in a batch (a publisher's retry) one row. Pure: no I/O, no clock.
public struct NoticeFanOut: Sendable {
    /// A valid record and what the queue said of it.
    public struct Item: Sendable {
        public var record: NoticeRecord
        /// The broker delivered it before (the service may have stored it then).
        public var redelivered: Bool
        /// For a record published without an id: the digest its redelivery is recognised by.
        public var sourceKey: String?

        public init(record: NoticeRecord, redelivered: Bool, sourceKey: String? = nil) {
            self.record = record
            self.redelivered = redelivered
            self.sourceKey = sourceKey
        }
    }

    /// The rows to insert, in the order of the batch.
    public private(set) var rows: [NoticeRow] = []
    /// Rows whose message came for the first time.
    private var firstDelivery: Set<NoticeKey> = []

    /// - Parameters:
    ///   - pushTargets: the `sendTarget` values that are pushed (all are stored).
    ///   - createdAtMillis: the batch's creation time, Unix ms.
    public init(_ items: [Item], pushTargets: Set<String>, createdAtMillis: Int64) {
        let createdAt = NoticeTimestamp.rfc3339(millis: createdAtMillis)
        var keys: Set<NoticeKey> = []
        for item in items {
            let record = item.record
            // A notice that has expired already is stored (and found by its id) but shown nowhere.
            let expired = record.expiresAtMillis.map { $0 <= createdAtMillis } ?? false
            let push = record.isPushed(pushTargets: pushTargets) && !expired
            // One body for all the record's rows: a multicast shares its text, not copies of it.
            let body = record.body(createdAt: createdAt)
            let recipients: [String?] =
                switch record.audience {
                case .broadcast: [nil]
                case .users(let users): users
                }
            for recipient in recipients {
                let key = NoticeKey(noticeId: record.id, recipient: recipient)
                guard keys.insert(key).inserted else { continue }
                if !item.redelivered { firstDelivery.insert(key) }
                rows.append(
                    NoticeRow(
                        noticeId: record.id,
                        recipient: recipient,
                        body: body,
                        createdAt: createdAtMillis,
                        category: record.category,
                        expiresAt: record.expiresAtMillis,
                        collapseKey: record.collapseKey,
                        sourceKey: item.sourceKey,
                        pushed: push
                    )
                )
            }
        }
    }

    /// The notices to push after the insert: the pushed rows it stored (`inserted`). After a
    /// failed attempt (`retried`), also those whose message came for the first time: that
    /// attempt may have committed after all (a PostgreSQL insert given up at its deadline), so
    /// "already stored" can mean "stored by us and never pushed". A redelivered notice found
    /// stored was pushed by whoever stored it.
    public func notices(inserted: Set<NoticeKey>, retried: Bool, consumedAt: ContinuousClock.Instant) -> [PushNotice] {
        rows.filter { $0.pushed && (inserted.contains($0.key) || (retried && firstDelivery.contains($0.key))) }
            .map { PushNotice(key: $0.key, payload: $0.payload, consumedAt: consumedAt) }
    }
}
