import Dispatch

/// Runs a blocking call (a child process, mostly) on a Dispatch thread, so that it does not
/// hold one of the few threads of Swift's cooperative pool that every other test shares.
func offThePool<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Swift.Result { try body() }) }
    }
}
