/// Turns deliveries settled in any order into `basic.ack multiple` calls that never
/// cover an unsettled delivery.
///
/// Delivery tags on one channel run 1, 2, 3, …; this keeps the highest tag up to which
/// every delivery is settled.
struct AckTracker: Sendable {
    /// Every tag up to this one has been acked.
    private(set) var acked: UInt64 = 0
    private var settled: Set<UInt64> = []

    mutating func settle(_ tag: UInt64) {
        if tag > acked { settled.insert(tag) }
    }

    /// The tag to ack with `multiple`, if more deliveries are now contiguously settled.
    mutating func nextAck() -> UInt64? {
        var upTo = acked
        while settled.remove(upTo + 1) != nil { upTo += 1 }
        guard upTo > acked else { return nil }
        acked = upTo
        return upTo
    }

    /// Settled deliveries waiting for an earlier one.
    var waiting: Int { settled.count }
}
