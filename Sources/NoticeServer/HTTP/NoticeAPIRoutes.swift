import Foundation
import HTTPTypes
import Hummingbird
import NoticeCore
import RabbitMQ

/// The HTTP API (SPEC §7): a user's notices, marking one read, and publishing for services
/// that cannot speak AMQP. Every route takes the same Bearer token as STOMP CONNECT, checked
/// by the same ``TokenVerifier``.
struct NoticeAPIRoutes: Sendable {
    let verifier: any TokenVerifier
    let store: any NoticeStore
    let connection: RabbitMQConnection
    let queue: String
    let publishScope: String
    let ids: NoticeIDGenerator
    /// Largest body `POST /api/notices` takes.
    let maxBodyBytes: Int

    static let defaultPageSize = 50
    static let maxPageSize = 200

    func addRoutes(to router: Router<NoticeRequestContext>) {
        let api = router.group("/api/notices")
        api.get { request, _ in try await list(request) }
        api.post { request, _ in try await publish(request) }
        api.post("/{id}/read") { request, context in try await markRead(request, id: context.parameters.get("id") ?? "") }
    }

    // MARK: Routes

    /// `GET /api/notices?unread=true&limit=50&before=<id>`: the caller's notices, newest first.
    private func list(_ request: Request) async throws -> Response {
        let principal = try await authenticate(request)
        let query = try Self.query(request.uri.queryParameters, userId: principal.userId)
        let rows: [StoredNoticeRow]
        do {
            rows = try await store.notices(query)
        } catch NoticeStoreError.unknownCursor {
            throw APIError(status: .badRequest, error: "invalid_request", message: "before: no such notice")
        } catch {
            throw APIError(status: .serviceUnavailable, error: "store_unavailable", message: "the notice store is unavailable; try again")
        }
        let next: JSONValue = rows.count == query.limit ? rows.last.map { .string(String($0.row.noticeId)) } ?? .null : .null
        let body = JSONValue.object(JSONObject([("notices", .array(rows.map(Self.item))), ("next", next)]))
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: .init(string: body.serialized))
        )
    }

    /// `POST /api/notices/<id>/read`: 204, or 404 when the caller has no such notice.
    private func markRead(_ request: Request, id: String) async throws -> Response {
        let principal = try await authenticate(request)
        guard let noticeId = try? NoticeValidator.parseId(.string(id)) else {
            throw APIError(status: .notFound, error: "not_found", message: "no such notice")
        }
        let found: Bool
        do {
            found = try await store.markRead(noticeId: noticeId, userId: principal.userId, at: Int64(Date().timeIntervalSince1970 * 1000))
        } catch {
            throw APIError(status: .serviceUnavailable, error: "store_unavailable", message: "the notice store is unavailable; try again")
        }
        // Another user's notice is indistinguishable from a missing one.
        guard found else { throw APIError(status: .notFound, error: "not_found", message: "no such notice") }
        return Response(status: .noContent)
    }

    /// `POST /api/notices`: validates a notice record as the queue consumer would and publishes
    /// it to the notice queue (one ingest path); 202 with its id once the broker confirmed it.
    private func publish(_ request: Request) async throws -> Response {
        let principal = try await authenticate(request)
        guard principal.scopes.contains(publishScope) else {
            throw APIError(status: .forbidden, error: "insufficient_scope", message: "publishing needs the scope \(publishScope)")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch {
            throw APIError(status: .contentTooLarge, error: "too_large", message: "the record is larger than \(maxBodyBytes) bytes")
        }
        let body = Array(buffer.readableBytesView)
        let record: NoticeRecord
        do {
            record = try NoticeValidator().validate(body) { ids.next() }
        } catch {
            throw APIError(status: .badRequest, error: "invalid_notice", message: error.description)
        }
        // A record without an id gets one here, written into the published JSON, so the id the
        // caller is told is the id stored (the consumer would otherwise assign its own).
        var published = body
        if record.idWasAssigned {
            var fields = record.fields
            fields["id"] = .string(String(record.id))
            published = Array(JSONValue.object(fields).serialized.utf8)
        }
        do {
            try await connection.publish(AMQPMessage(body: published, properties: .persistentJSON), exchange: "", routingKey: queue)
        } catch {
            throw APIError(status: .serviceUnavailable, error: "broker_unavailable", message: "the notice could not be queued; try again")
        }
        return jsonResponse(status: .accepted, ["id": String(record.id)])
    }

    // MARK: Helpers

    /// The caller's principal, from `Authorization: Bearer <token>`; 401 otherwise.
    private func authenticate(_ request: Request) async throws -> Principal {
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

    /// The list query from `unread`, `limit` and `before`; 400 with the reason when one is malformed.
    static func query(_ parameters: Parameters, userId: String) throws -> NoticeQuery {
        var query = NoticeQuery(userId: userId, limit: defaultPageSize)
        if let unread = parameters.get("unread") {
            guard let flag = Bool(unread.lowercased()) else {
                throw APIError(status: .badRequest, error: "invalid_request", message: "unread must be true or false")
            }
            query.unreadOnly = flag
        }
        if let limit = parameters.get("limit") {
            guard let value = Int(limit), (1...maxPageSize).contains(value) else {
                throw APIError(status: .badRequest, error: "invalid_request", message: "limit must be an integer from 1 to \(maxPageSize)")
            }
            query.limit = value
        }
        if let before = parameters.get("before") {
            guard let id = try? NoticeValidator.parseId(.string(before)) else {
                throw APIError(status: .badRequest, error: "invalid_request", message: "before must be a notice id")
            }
            query.before = id
        }
        return query
    }

    /// One notice as listed: its id, times (RFC 3339, as in the pushed notice) and the JSON a
    /// browser received.
    static func item(_ stored: StoredNoticeRow) -> JSONValue {
        let notice = (try? JSONParser.parse(Array(stored.row.payload.utf8))) ?? .string(stored.row.payload)
        func time(_ millis: Int64?) -> JSONValue { millis.map { .string(NoticeTimestamp.rfc3339(millis: $0)) } ?? .null }
        return .object(
            JSONObject([
                ("id", .string(String(stored.row.noticeId))),
                ("createdAt", time(stored.row.createdAt)),
                ("deliveredAt", time(stored.deliveredAt)),
                ("readAt", time(stored.readAt)),
                ("notice", notice),
            ])
        )
    }
}
