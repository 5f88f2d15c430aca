import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the sessions of one event loop saw. Only that loop touches it (read it with
/// ``SessionClient/collect(_:)``), so recording a latency takes no lock.
final class LoopRecorder: @unchecked Sendable {
    let loop: any EventLoop
    /// Publish → MESSAGE latencies in ns (CLOCK_REALTIME on both ends).
    var latencies: [Int64] = []
    /// CLOCK_REALTIME at which each of ``latencies`` was received (same index).
    var receivedAt: [Int64] = []
    /// CLOCK_REALTIME of the last MESSAGE received.
    var lastReceived: Int64 = 0
    /// Connect mode: CONNECT sent → CONNECTED, and TCP connect started → CONNECTED, in ns.
    var connectLatencies: [Int64] = []
    var openLatencies: [Int64] = []
    /// Open sessions, to close them at the end.
    var channels: [ObjectIdentifier: any Channel] = [:]
    var firstError: String?

    init(loop: any EventLoop) {
        self.loop = loop
        latencies.reserveCapacity(1 << 16)
        receivedAt.reserveCapacity(1 << 16)
    }

    func fail(_ reason: String) {
        if firstError == nil { firstError = reason }
    }
}

/// Counters every loop bumps (a few per session, one per message).
final class SessionCounters: Sendable {
    let started = Atomic<Int>(0)
    let ready = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let received = Atomic<Int>(0)
    /// MESSAGEs on the events destination (`--events`): counts, not notices.
    let events = Atomic<Int>(0)
    let closed = Atomic<Int>(0)

    var settled: Int { ready.load(ordering: .relaxed) + failed.load(ordering: .relaxed) }
}

/// Wall-clock nanoseconds (CLOCK_REALTIME), as the publisher stamps `sentAt`.
func realtimeNanos() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Monotonic nanoseconds, for durations measured inside the bench.
func monotonicNanos() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}
