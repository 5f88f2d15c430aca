import PostgresNIO

/// Why a PostgreSQL store operation failed, in words readiness and logs can show.
///
/// postgres-nio's `PSQLError` describes itself only as "Generic description to prevent
/// accidental leakage": this keeps what an operator needs (the SQLSTATE and server message,
/// or the connection problem) and leaves out query text and bound values.
public struct PostgresStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The store operation, e.g. `insert`.
    public let operation: String
    /// What went wrong.
    public let reason: String
    /// The SQLSTATE the server sent, if it answered with an error.
    public let sqlState: String?

    public var description: String { "PostgreSQL \(operation) failed: \(reason)" }

    init(operation: String, reason: String, sqlState: String? = nil) {
        self.operation = operation
        self.reason = reason
        self.sqlState = sqlState
    }

    /// The operation did not finish within its deadline.
    static func timedOut(_ operation: String, after timeout: Duration) -> Self {
        Self(operation: operation, reason: "no answer within \(timeout) (server down or unreachable?)")
    }

    /// Wraps what postgres-nio threw.
    init(operation: String, wrapping error: any Error) {
        switch error {
        case let error as PostgresStoreError:
            self = error
        case let error as PSQLError:
            if let state = error.serverInfo?[.sqlState] {
                let message = error.serverInfo?[.message] ?? "error"
                self.init(operation: operation, reason: "\(state) \(message)", sqlState: state)
            } else if let underlying = error.underlying {
                self.init(operation: operation, reason: "\(error.code): \(underlying)")
            } else {
                self.init(operation: operation, reason: "\(error.code)")
            }
        case is CancellationError:
            self.init(operation: operation, reason: "cancelled")
        default:
            // e.g. the pool's own ConnectionPoolError (its module is underscored: not imported here).
            self.init(operation: operation, reason: "\(error)")
        }
    }
}
