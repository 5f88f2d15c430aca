import Synchronization

/// Runs `body`, but returns (throwing `onTimeout()`) once `timeout` has passed even if `body`
/// has not finished: a query on a connection whose server went silent does not react to
/// cancellation, and a caller must never wait on it forever. `body` is cancelled at the
/// deadline and left to end on its own (its connection's failure ends it).
func withDeadline<Result: Sendable>(
    _ timeout: Duration,
    onTimeout: @escaping @Sendable () -> any Error,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let work = Task { try await body() }
    let outcome = await withTaskCancellationHandler {
        await withCheckedContinuation { (continuation: CheckedContinuation<Swift.Result<Result, any Error>, Never>) in
            let once = Once(continuation)
            let timer = Task {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                once.resume(.failure(onTimeout()))
                work.cancel()
            }
            Task {
                let result = await work.result
                timer.cancel()
                once.resume(result)
            }
        }
    } onCancel: {
        work.cancel()
    }
    return try outcome.get()
}

/// A continuation resumed by whichever of two racers comes first.
private final class Once<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>

    init(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: Value) {
        let pending = continuation.withLock { slot in
            defer { slot = nil }
            return slot
        }
        pending?.resume(returning: value)
    }
}
