import Synchronization

/// The node's notices that reached their user (written on an `ack:auto` subscription, or
/// ACKed) and whose `delivered_at` is not stored yet: the one owner of that path.
///
/// Sessions ``record(_:)``; the ingest pipeline ``take()``s what is pending into its batch's
/// transaction (so marks cost no transaction of their own) and ``putBack(_:)`` what it could
/// not commit; a recorder writes what is left when no batch comes.
public final class DeliveryMarks: Sendable {
    private let pending = Mutex<[NoticeKey]>([])

    public init() {}

    public func record(_ key: NoticeKey) {
        pending.withLock { $0.append(key) }
    }

    public func record(_ keys: some Sequence<NoticeKey>) {
        pending.withLock { $0.append(contentsOf: keys) }
    }

    /// The marks recorded since the last take, for a transaction of the caller's.
    public func take() -> [NoticeKey] {
        pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }

    /// Marks taken but not written (the caller's transaction was given up).
    public func putBack(_ keys: [NoticeKey]) {
        guard !keys.isEmpty else { return }
        pending.withLock { $0.append(contentsOf: keys) }
    }

    public var pendingCount: Int { pending.withLock { $0.count } }
}
