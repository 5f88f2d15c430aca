import Logging
import NoticeCore
import PostgresNIO
import Synchronization

extension PostgresNoticeStore {
    /// Why a connection to the server cannot be opened now (refused, timed out, bad password,
    /// unknown database…), or `nil` when one can. The pool only makes a waiting request time
    /// out; this opens one connection of its own to learn the reason, so that readiness and
    /// logs can say it. It waits at most 2 s (or ``Configuration/connectTimeout`` if shorter).
    func connectionProblem() async -> String? {
        let patience = min(configuration.connectTimeout, .seconds(2))
        var options = PostgresConnection.Configuration(
            host: configuration.host,
            port: configuration.port,
            username: configuration.username,
            password: configuration.password,
            database: configuration.database,
            tls: .disable
        )
        options.options.connectTimeout = .nanoseconds(configuration.connectTimeout.saturatedNanoseconds)
        do {
            switch configuration.tls {
            case .disable: break
            case .require, .verifyFull:
                options.tls = .require(try NIOSSLContext(configuration: configuration.tls.tlsConfiguration))
            }
            try await withDeadline(patience, onTimeout: { PostgresStoreError(operation: "connect", reason: "no answer within \(patience)") }) {
                [options, logger] in
                // Closed here, not by the caller: a connection that opens after the deadline is closed too.
                let connection = try await PostgresConnection.connect(configuration: options, id: 0, logger: logger)
                try? await connection.close()
            }
            return nil
        } catch {
            return PostgresStoreError(operation: "connect", wrapping: error).reason
        }
    }
}

/// Set once, read from another task: whether an operation got its connection.
final class Flag: Sendable {
    private let state = Mutex(false)

    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
