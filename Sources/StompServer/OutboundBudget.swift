import NoticeCore
import Synchronization

/// The bytes of notices queued for one connection, and when its reader is too slow: a reader
/// that stays more than ``limit`` behind for ``grace``, or falls ``hardLimit`` behind at all,
/// is cut off (its notices stay stored and are replayed on its next SUBSCRIBE). A burst that
/// the reader is draining is fine.
///
/// Times are monotonic nanoseconds supplied by the caller, so the rules are tested without a clock.
/// Stored inline in its connection (noncopyable: it holds atomics).
struct OutboundBudget: ~Copyable, Sendable {
    /// What queuing a notice means for the connection.
    enum Admission: Equatable, Sendable {
        /// Queued.
        case queued
        /// Queued, and the queue has just gone over the limit: check ``isOverGrace(now:)`` after the grace.
        case overLimit
        /// Over the hard limit: cut the connection off now (once; later notices get ``refused``).
        case cutOff
        /// The connection was cut off: drop the notice.
        case refused
    }

    /// How many times ``limit`` a reader may fall behind, however briefly.
    static var hardLimitFactor: Int { 16 }

    let limit: Int
    let hardLimit: Int
    let grace: Duration
    private let queued = Atomic<Int>(0)
    /// When the queue went over the limit; 0 while under it.
    private let overSince = Atomic<Int64>(0)
    private let cut = Atomic<Bool>(false)

    init(limit: Int, grace: Duration) {
        self.limit = max(0, limit)
        let (hard, overflow) = self.limit.multipliedReportingOverflow(by: Self.hardLimitFactor)
        self.hardLimit = overflow ? .max : hard
        self.grace = grace
    }

    /// Counts `bytes` of a notice in.
    func admit(_ bytes: Int, now: Int64) -> Admission {
        guard !cut.load(ordering: .relaxed) else { return .refused }
        let total = add(bytes)
        if total > hardLimit { return cutOff() ? .cutOff : .refused }
        if total > limit, overSince.compareExchange(expected: 0, desired: max(1, now), ordering: .relaxed).exchanged {
            return .overLimit
        }
        return .queued
    }

    /// Counts `bytes` out: the notice was written (or dropped).
    func release(_ bytes: Int) {
        if queued.wrappingSubtract(bytes, ordering: .relaxed).newValue <= limit {
            overSince.store(0, ordering: .relaxed)
        }
    }

    /// Whether the queue has been over the limit for the whole grace period at `now`.
    func isOverGrace(now: Int64) -> Bool {
        let since = overSince.load(ordering: .relaxed)
        guard since != 0 else { return false }
        let (elapsed, overflow) = now.subtractingReportingOverflow(since)
        return overflow || elapsed >= grace.saturatedNanoseconds
    }

    /// Marks the connection cut off; `true` only the first time.
    func cutOff() -> Bool {
        !cut.exchange(true, ordering: .relaxed)
    }

    var isCutOff: Bool { cut.load(ordering: .relaxed) }

    /// Bytes queued now.
    var queuedBytes: Int { queued.load(ordering: .relaxed) }

    /// Adds to the queue, saturating at `Int.max`; the new total.
    private func add(_ bytes: Int) -> Int {
        var current = queued.load(ordering: .relaxed)
        while true {
            let (sum, overflow) = current.addingReportingOverflow(bytes)
            let total = overflow ? Int.max : sum
            let (exchanged, original) = queued.compareExchange(expected: current, desired: total, ordering: .relaxed)
            if exchanged { return total }
            current = original
        }
    }
}
