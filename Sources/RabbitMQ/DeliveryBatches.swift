import Synchronization

/// The consumer's deliveries, in queue order, for one consuming task. What the broker sent
/// while the previous batch was being handled comes as one batch: a consumer that commits
/// each batch then commits fewer, larger ones the busier it is, instead of falling behind
/// one socket read at a time.
public final class DeliveryBatches: AsyncSequence, Sendable {
    public typealias Element = [AMQPDelivery]

    private struct State {
        var pending: [AMQPDelivery] = []
        var finished = false
        var waiter: CheckedContinuation<[AMQPDelivery]?, Never>?
    }

    private let state = Mutex(State())

    init() {}

    /// Adds deliveries (the worker thread).
    func yield(_ batch: [AMQPDelivery]) {
        let waiter: CheckedContinuation<[AMQPDelivery]?, Never>? = state.withLock { state in
            guard !state.finished else { return nil }
            if let waiter = state.waiter {
                // Someone waits only while nothing is pending.
                state.waiter = nil
                return waiter
            }
            state.pending.append(contentsOf: batch)
            return nil
        }
        waiter?.resume(returning: batch)
    }

    /// Forgets the deliveries the consumer has not taken yet (those of a lost connection).
    func dropPending() {
        state.withLock { $0.pending = [] }
    }

    /// Ends the sequence after what is pending.
    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Everything delivered since the last call, waiting until there is something; `nil`
    /// when finished (after the last deliveries) or when the waiting task is cancelled.
    func next() async -> [AMQPDelivery]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[AMQPDelivery]?, Never>) in
                let ready: [AMQPDelivery]?? = state.withLock { state in
                    if !state.pending.isEmpty {
                        defer { state.pending = [] }
                        return .some(state.pending)
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let batches: DeliveryBatches

        public mutating func next() async -> [AMQPDelivery]? {
            await batches.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(batches: self)
    }
}
