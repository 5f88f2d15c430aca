import AsyncHTTPClient
import Logging
import NoticeCore
import ServiceLifecycle
import TokenIntrospection

/// The CONNECT (and HTTP API) token check against the authorization server.
struct IntrospectionVerifier: TokenVerifier {
    let introspector: TokenIntrospector
    let logger: Logger

    func verify(token: String) async -> Principal? {
        switch await introspector.check(token) {
        case .active(let userId, let expiresAt, let scopes):
            return Principal(userId: userId, expiresAt: expiresAt, scopes: scopes)
        case .denied(let reason):
            // The reason, never the token.
            logger.debug("token denied", metadata: ["auth.reason": "\(reason)"])
            return nil
        }
    }
}

/// Owns the process's HTTP client and shuts it down after everything else has stopped.
struct HTTPClientService: Service, CustomStringConvertible {
    let client: HTTPClient
    var description: String { "HTTPClientService" }

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
