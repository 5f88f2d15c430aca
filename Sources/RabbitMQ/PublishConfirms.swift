/// The publishes of one connection that await the broker's confirm (`basic.ack` or
/// `basic.nack` on the confirm-mode channel), each with its waiter.
///
/// Sequence numbers run 1, 2, 3, … from the connection's first publish; a confirm names
/// one of them, or with `multiple` every one up to it.
struct PublishConfirms<Waiter> {
    /// The sequence number of the latest publish.
    private(set) var sequence: UInt64 = 0
    /// No publish below this one awaits a confirm (single confirms may leave gaps above it).
    private(set) var oldestUnconfirmed: UInt64 = 1
    private var waiters: [UInt64: Waiter] = [:]

    /// Publishes awaiting a confirm.
    var count: Int { waiters.count }

    /// Records a publish sent to the broker; returns its sequence number.
    @discardableResult
    mutating func published(_ waiter: Waiter) -> UInt64 {
        sequence += 1
        waiters[sequence] = waiter
        return sequence
    }

    /// The waiters a confirm settles, oldest first; none for a tag already settled or never sent.
    mutating func confirm(_ tag: UInt64, multiple: Bool) -> [Waiter] {
        guard multiple else { return waiters.removeValue(forKey: tag).map { [$0] } ?? [] }
        var settled: [Waiter] = []
        // Every sequence number below `oldestUnconfirmed` is settled, so each publish is
        // visited once over the connection's life.
        while oldestUnconfirmed <= min(tag, sequence) {
            if let waiter = waiters.removeValue(forKey: oldestUnconfirmed) { settled.append(waiter) }
            oldestUnconfirmed += 1
        }
        return settled
    }

    /// The connection is gone: every waiter still unconfirmed, oldest first. The next
    /// connection numbers its publishes from 1 again.
    mutating func connectionLost() -> [Waiter] {
        defer { self = PublishConfirms() }
        return waiters.keys.sorted().map { waiters[$0]! }
    }
}

extension PublishConfirms: Sendable where Waiter: Sendable {}
