import Synchronization

/// Bytes received from the client and not yet decoded, bounded: past ``limit`` the transport
/// stops reading (TCP then pushes back on the client) until the driver has caught up, and is
/// told when it has, so nothing polls. Stored inline in its connection.
struct InboundCredit: ~Copyable, Sendable {
    /// Internal, not private: the owner stores this inline, and the compiler (6.3) cannot lay out
    /// a private type from another file.
    struct State {
        var waiting = 0
        var wakers: [@Sendable () -> Void] = []
        /// The driver has ended: reading may go on, what arrives is dropped.
        var finished = false

        var isReady: Bool { finished || waiting <= limit }
        let limit: Int
    }

    let limit: Int
    private let state: Mutex<State>

    init(limit: Int) {
        self.limit = max(0, limit)
        self.state = Mutex(State(limit: max(0, limit)))
    }

    /// Counts `bytes` in; `false` once over the limit: stop reading until ``whenReady(_:)`` calls back.
    func add(_ bytes: Int) -> Bool {
        state.withLock { state in
            guard !state.finished else { return true }
            let (sum, overflow) = state.waiting.addingReportingOverflow(bytes)
            state.waiting = overflow ? .max : sum
            return state.isReady
        }
    }

    /// Counts `bytes` out (the driver took them); wakes whoever waits once under the limit again.
    func remove(_ bytes: Int) {
        let wakers = state.withLock { state -> [@Sendable () -> Void] in
            state.waiting = max(0, state.waiting - bytes)
            guard state.isReady, !state.wakers.isEmpty else { return [] }
            defer { state.wakers = [] }
            return state.wakers
        }
        for wake in wakers { wake() }
    }

    /// Calls `action` once the driver has caught up: now if it has, else from ``remove(_:)`` or ``finish()``.
    func whenReady(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            if state.isReady { return true }
            state.wakers.append(action)
            return false
        }
        if now { action() }
    }

    /// Waits until the driver has caught up, or the task is cancelled.
    func waitUntilReady() async {
        let waiter = Waiter()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                waiter.set(continuation)
                whenReady { waiter.resume() }
            }
        } onCancel: {
            waiter.resume()
        }
    }

    /// The driver has ended: ready for ever, and whoever waits is woken.
    func finish() {
        let wakers = state.withLock { state in
            state.finished = true
            defer { state.wakers = [] }
            return state.wakers
        }
        for wake in wakers { wake() }
    }

    var isReady: Bool { state.withLock { $0.isReady } }

    /// A continuation resumed exactly once, by whichever comes first (ready or cancelled).
    private final class Waiter: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<Void, Never>?, resumed: Bool)>((nil, false))

        func set(_ continuation: CheckedContinuation<Void, Never>) {
            let resumeNow = state.withLock { state in
                if state.resumed { return true }
                state.continuation = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }

        func resume() {
            let continuation = state.withLock { state in
                defer {
                    state.resumed = true
                    state.continuation = nil
                }
                return state.continuation
            }
            continuation?.resume()
        }
    }
}
