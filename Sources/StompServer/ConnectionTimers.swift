import Foundation
import NIOCore
import NoticeCore
import Synchronization

/// What holds a connection's timers and is told when they go off. The timers are stored inline
/// in their owner, and a timer refers to the owner, not to a closure of its own: a connection's
/// timers cost no object beyond the event loop's scheduled tasks.
protocol ConnectionTimersOwner: AnyObject, Sendable {
    var timers: ConnectionTimers { get }

    /// The timer in `slot` has gone off.
    func timerFired(_ slot: ConnectionTimers.Slot)

    /// A period of ``ConnectionTimers/repeatEvery(_:in:)`` has passed.
    func heartBeatDue()
}

/// One connection's timers (CONNECT deadline, token expiry, slow-reader check, heart-beats)
/// as scheduled tasks on an event loop. Each kind has one slot: setting it replaces what was
/// there. Once ``stop()`` is called every timer is cancelled, and any set later is cancelled at
/// once (a pending timer would keep the connection alive).
struct ConnectionTimers: ~Copyable, Sendable {
    enum Slot: Sendable, Hashable, CaseIterable {
        case connectTimeout
        case expiry
        /// A minute before ``expiry``: the session tells the client (`token-expiring`).
        case tokenExpiring
        case slowReader
    }

    /// The longest single wait; a later deadline is reached in steps of this.
    static var longestStep: Duration { .seconds(86_400) }

    /// Internal, not private: the owner stores this inline, and the compiler (6.3) cannot lay out
    /// a private type from another file.
    struct State {
        var connectTimeout: Scheduled<Void>?
        var expiry: Scheduled<Void>?
        var tokenExpiring: Scheduled<Void>?
        var slowReader: Scheduled<Void>?
        var heartBeat: RepeatedTask?
        var stopped = false

        subscript(slot: Slot) -> Scheduled<Void>? {
            get {
                switch slot {
                case .connectTimeout: connectTimeout
                case .expiry: expiry
                case .tokenExpiring: tokenExpiring
                case .slowReader: slowReader
                }
            }
            set {
                switch slot {
                case .connectTimeout: connectTimeout = newValue
                case .expiry: expiry = newValue
                case .tokenExpiring: tokenExpiring = newValue
                case .slowReader: slowReader = newValue
                }
            }
        }

        /// Puts `scheduled` in `slot`, cancelling what was there; cancels it instead once stopped.
        mutating func set(_ slot: Slot, _ scheduled: Scheduled<Void>) {
            self[slot]?.cancel()
            if stopped { scheduled.cancel() } else { self[slot] = scheduled }
        }
    }

    let eventLoop: any EventLoop
    /// The wall clock, Unix ms (tests give one that follows the loop's time).
    private let nowMillis: @Sendable () -> Int64
    private let state = Mutex(State())

    init(eventLoop: any EventLoop, nowMillis: @escaping @Sendable () -> Int64 = ConnectionTimers.nowMillis) {
        self.eventLoop = eventLoop
        self.nowMillis = nowMillis
    }

    /// Tells `owner` that `slot` fired after `delay` (saturated: an absurd delay is simply never reached).
    func schedule(_ slot: Slot, after delay: Duration, in owner: some ConnectionTimersOwner) {
        let scheduled = eventLoop.scheduleTask(in: .nanoseconds(delay.saturatedNanoseconds)) { owner.timerFired(slot) }
        state.withLock { $0.set(slot, scheduled) }
    }

    /// Tells `owner` that `slot` fired once the wall clock reaches `deadline` (Unix ms), in steps
    /// of at most ``longestStep``: a token valid for centuries needs no timer that far ahead.
    func schedule(_ slot: Slot, atUnixMillis deadline: Int64, in owner: some ConnectionTimersOwner) {
        let (difference, overflow) = deadline.subtractingReportingOverflow(nowMillis())
        let remaining = overflow ? (deadline < 0 ? 0 : Int64.max) : max(0, difference)
        let step = min(remaining, Self.longestStep.saturatedNanoseconds / 1_000_000)
        let isLast = step == remaining
        let delay = Duration.milliseconds(step) + .milliseconds(isLast ? 1 : 0)
        let scheduled = eventLoop.scheduleTask(in: .nanoseconds(delay.saturatedNanoseconds)) {
            // The wall clock may have been set back meanwhile: the deadline is checked, not assumed.
            if isLast, owner.timers.nowMillis() >= deadline {
                owner.timerFired(slot)
            } else {
                owner.timers.schedule(slot, atUnixMillis: deadline, in: owner)
            }
        }
        state.withLock { $0.set(slot, scheduled) }
    }

    /// Tells `owner` that a heart-beat is due every `interval` until stopped (replacing any
    /// earlier repetition).
    func repeatEvery(_ interval: Duration, in owner: some ConnectionTimersOwner) {
        let period = TimeAmount.nanoseconds(interval.saturatedNanoseconds)
        let repeated = eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in owner.heartBeatDue() }
        state.withLock { state in
            state.heartBeat?.cancel()
            if state.stopped { repeated.cancel() } else { state.heartBeat = repeated }
        }
    }

    func cancel(_ slot: Slot) {
        state.withLock { state in
            defer { state[slot] = nil }
            return state[slot]
        }?.cancel()
    }

    /// Cancels every timer, now and from now on.
    func stop() {
        state.withLock { state in
            for slot in Slot.allCases { state[slot]?.cancel() }
            state.heartBeat?.cancel()
            state = State()
            state.stopped = true
        }
    }

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
