import Logging
import NoticeCore
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
