import Hummingbird
import NoticeCore

/// The admin API (docs/inbox.md): a token with `NOTICE_ADMIN_SCOPE` ends a user's sessions on
/// every node.
struct AdminRoutes: Sendable {
    let authentication: BearerAuthentication
    let hub: DeliveryHub
    let relay: ClusterRelay?
    let adminScope: String

    func addRoutes(to router: Router<NoticeRequestContext>) {
        router.delete("/api/admin/users/{userId}/sessions") { request, context in
            try await endSessions(request, userId: context.parameters.get("userId") ?? "")
        }
    }

    /// `DELETE /api/admin/users/<id>/sessions`: this node's sessions of the user get `ERROR
    /// message:disconnected` and close, and the other nodes are asked to do the same through
    /// the relay; 202 `{"userId","closedHere"}`. The user may connect again (to keep them out,
    /// revoke their tokens at the authorization server).
    private func endSessions(_ request: Request, userId: String) async throws -> Response {
        let principal = try await authentication.principal(of: request)
        guard principal.scopes.contains(adminScope) else {
            throw APIError(status: .forbidden, error: "insufficient_scope", message: "ending sessions needs the scope \(adminScope)")
        }
        guard (try? NoticeValidator.parseUserId(.string(userId), field: "userId")) != nil else {
            throw APIError(status: .badRequest, error: "invalid_request", message: "not a user id")
        }
        let closed = ClusterRelay.endSessions(of: userId, on: hub)
        relay?.forwardDisconnect(userId)
        var response = NoticeAPIRoutes.json(.object(JSONObject([("userId", .string(userId)), ("closedHere", .number(String(closed)))])))
        response.status = .accepted
        return response
    }
}
