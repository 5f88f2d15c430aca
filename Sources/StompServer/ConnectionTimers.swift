import Foundation
import NIOCore
import NoticeCore
import Synchronization

/// One connection's timers (CONNECT deadline, token expiry, slow-reader check, heart-beats)
/// as scheduled tasks on an event loop. Each kind has one slot: setting it replaces what was
/// there. Once ``stop()`` is called every timer is cancelled, and any set later is cancelled at
/// once (a pending timer would keep the connection alive).
final class ConnectionTimers: Sendable {
    enum Slot: Sendable, Hashable, CaseIterable {
        case connectTimeout
        case expiry
        case slowReader
    }

    /// The longest single wait; a later deadline is reached in steps of this.
    static var longestStep: Duration { .seconds(86_400) }

    private struct State {
        var scheduled: [Slot: Scheduled<Void>] = [:]
        var repeated: RepeatedTask?
        var stopped = false
    }

    let eventLoop: any EventLoop
    /// The wall clock, Unix ms (tests give one that follows the loop's time).
    private let nowMillis: @Sendable () -> Int64
    private let state = Mutex(State())

    init(eventLoop: any EventLoop, nowMillis: @escaping @Sendable () -> Int64 = ConnectionTimers.nowMillis) {
        self.eventLoop = eventLoop
        self.nowMillis = nowMillis
    }

    /// Runs `action` after `delay` (saturated: an absurd delay is simply never reached).
    func schedule(_ slot: Slot, after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        let scheduled = eventLoop.scheduleTask(in: .nanoseconds(delay.saturatedNanoseconds)) { action() }
        state.withLock { state in
            state.scheduled[slot]?.cancel()
            if state.stopped { scheduled.cancel() } else { state.scheduled[slot] = scheduled }
        }
    }

    /// Runs `action` once the wall clock reaches `deadline` (Unix ms), in steps of at most
    /// ``longestStep``: a token valid for centuries needs no timer that far ahead.
    func schedule(_ slot: Slot, atUnixMillis deadline: Int64, _ action: @escaping @Sendable () -> Void) {
        let (difference, overflow) = deadline.subtractingReportingOverflow(nowMillis())
        let remaining = overflow ? (deadline < 0 ? 0 : Int64.max) : max(0, difference)
        let step = min(remaining, Self.longestStep.saturatedNanoseconds / 1_000_000)
        let isLast = step == remaining
        schedule(slot, after: .milliseconds(step) + .milliseconds(isLast ? 1 : 0)) {
            // The wall clock may have been set back meanwhile: the deadline is checked, not assumed.
            if isLast, self.nowMillis() >= deadline { action() } else { self.schedule(slot, atUnixMillis: deadline, action) }
        }
    }

    /// Runs `action` every `interval` until stopped (replacing any earlier repetition).
    func repeatEvery(_ interval: Duration, _ action: @escaping @Sendable () -> Void) {
        let period = TimeAmount.nanoseconds(interval.saturatedNanoseconds)
        let repeated = eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in action() }
        state.withLock { state in
            state.repeated?.cancel()
            if state.stopped { repeated.cancel() } else { state.repeated = repeated }
        }
    }

    func cancel(_ slot: Slot) {
        state.withLock { $0.scheduled.removeValue(forKey: slot) }?.cancel()
    }

    /// Cancels every timer, now and from now on.
    func stop() {
        state.withLock { state in
            for scheduled in state.scheduled.values { scheduled.cancel() }
            state.repeated?.cancel()
            state = State()
            state.stopped = true
        }
    }

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
