import Synchronization

/// What readiness reports about the store, as the ingest pipeline last saw it.
public final class ServiceHealth: Sendable {
    private let storeProblem = Mutex<String?>(nil)

    public init() {}

    /// `nil` when the last commit succeeded; otherwise why it failed.
    public var storeError: String? { storeProblem.withLock { $0 } }

    func storeFailed(_ reason: String) { storeProblem.withLock { $0 = reason } }
    func storeRecovered() { storeProblem.withLock { $0 = nil } }
}
