import HTTPTypes
import Hummingbird
import NoticeCore

/// The Bearer check of every API route: the same token, checked by the same
/// ``TokenVerifier`` (its cache included), as STOMP CONNECT.
struct BearerAuthentication: Sendable {
    let verifier: any TokenVerifier

    /// The caller's principal, from `Authorization: Bearer <token>`; 401 otherwise.
    func principal(of request: Request) async throws -> Principal {
        let challenge: HTTPFields = [.wwwAuthenticate: #"Bearer realm="notice-service""#]
        guard let header = request.headers[.authorization], let token = BearerToken.parse(header) else {
            throw APIError(
                status: .unauthorized,
                error: "unauthorized",
                message: "an Authorization: Bearer access token is required",
                headers: challenge
            )
        }
        guard let principal = await verifier.verify(token: token) else {
            var invalid = challenge
            invalid[.wwwAuthenticate] = #"Bearer realm="notice-service", error="invalid_token""#
            throw APIError(status: .unauthorized, error: "invalid_token", message: "the access token was not accepted", headers: invalid)
        }
        return principal
    }
}
