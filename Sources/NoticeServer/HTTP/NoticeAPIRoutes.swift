import Foundation
import HTTPTypes
import Hummingbird
import NoticeCore
import RabbitMQ

/// The HTTP API (SPEC §7): a user's inbox (the list, its counts, state changes) and
/// publishing for services that cannot speak AMQP. Every route takes the same Bearer token as STOMP CONNECT, checked
/// by the same ``TokenVerifier``.
struct NoticeAPIRoutes: Sendable {
    let verifier: any TokenVerifier
    let store: any NoticeStore
    /// State changes go through here, so that the user's sessions hear of them.
    let inbox: InboxChanges
    let connection: RabbitMQConnection
    let queue: String
    let publishScope: String
    let ids: NoticeIDGenerator
    /// Largest body `POST /api/notices` takes.
    let maxBodyBytes: Int
    /// Largest body `POST /api/notices/state` takes (200 ids fit with room to spare).
    static let maxCommandBytes = 16 * 1024

    static let defaultPageSize = 50
    static let maxPageSize = 200

    func addRoutes(to router: Router<NoticeRequestContext>) {
        let api = router.group("/api/notices")
        api.get { request, _ in try await list(request) }
        api.post { request, _ in try await publish(request) }
        api.get("/count") { request, _ in try await counts(request) }
        api.post("/state") { request, _ in try await changeState(request) }
        api.delete("/{id}") { request, context in try await recall(request, id: context.parameters.get("id") ?? "") }
        api.get("/{id}/receipts") { request, context in try await receipts(request, id: context.parameters.get("id") ?? "") }
        api.post("/{id}/{action}") { request, context in
            try await changeOne(request, id: context.parameters.get("id") ?? "", action: context.parameters.get("action") ?? "")
        }
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
            throw Self.storeUnavailable
        }
        let next: JSONValue = rows.count == query.limit ? rows.last.map { .string(String($0.row.noticeId)) } ?? .null : .null
        return Self.json(.object(JSONObject([("notices", .array(rows.map(Self.item))), ("next", next)])))
    }

    /// `GET /api/notices/count?category=<c>&cap=99`: unread and unseen, not archived, each
    /// exact up to `cap` and flagged when there are more (a badge shows "99+").
    private func counts(_ request: Request) async throws -> Response {
        let principal = try await authenticate(request)
        let parameters = request.uri.queryParameters
        let cap = try Self.integer(parameters, "cap", in: 1...NoticeCounts.maxCap) ?? NoticeCounts.defaultCap
        let category = try Self.category(parameters)
        let counts: NoticeCounts
        do {
            counts = try await store.counts(userId: principal.userId, category: category, cap: cap)
        } catch {
            throw Self.storeUnavailable
        }
        return Self.json(counts.json(category: category))
    }

    /// `POST /api/notices/state` with an ``InboxCommand`` body: 200 `{"changed": n}`.
    private func changeState(_ request: Request) async throws -> Response {
        let principal = try await authenticate(request)
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxCommandBytes)
        } catch {
            throw APIError(status: .contentTooLarge, error: "too_large", message: "the command is larger than \(Self.maxCommandBytes) bytes")
        }
        let command: InboxCommand
        do {
            command = try InboxCommand.parse(try JSONParser.parse(Array(buffer.readableBytesView)))
        } catch let error as InboxCommandError {
            throw APIError(status: .badRequest, error: "invalid_request", message: error.description)
        } catch {
            throw APIError(status: .badRequest, error: "invalid_request", message: "the body is not JSON")
        }
        let changed: Int
        do {
            changed = try await inbox.apply(command, userId: principal.userId, at: Self.nowMillis())
        } catch NoticeStoreError.unknownCursor {
            throw APIError(status: .badRequest, error: "invalid_request", message: "upTo: no such notice")
        } catch {
            throw Self.storeUnavailable
        }
        return Self.json(.object(JSONObject([("changed", .number(String(changed)))])))
    }

    /// `POST /api/notices/<id>/<action>` (`read`, `unread`, `seen`, `archive`, `unarchive`,
    /// `delete`): 204, also when it already was in that state; 404 when the caller has no
    /// such notice.
    private func changeOne(_ request: Request, id: String, action name: String) async throws -> Response {
        let principal = try await authenticate(request)
        guard let action = InboxAction(rawValue: name) else {
            throw APIError(
                status: .notFound,
                error: "not_found",
                message: "no such action; one of \(InboxAction.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard let noticeId = try? NoticeValidator.parseId(.string(id)) else {
            throw APIError(status: .notFound, error: "not_found", message: "no such notice")
        }
        let found: Bool
        do {
            let key = NoticeKey(noticeId: noticeId, recipient: principal.userId)
            let changed = try await inbox.apply(
                InboxCommand(action: action, selection: .ids([noticeId])),
                userId: principal.userId,
                at: Self.nowMillis()
            )
            if changed > 0 { found = true } else { found = try await store.row(key) != nil }
        } catch {
            throw Self.storeUnavailable
        }
        // Another user's notice is indistinguishable from a missing one.
        guard found else { throw APIError(status: .notFound, error: "not_found", message: "no such notice") }
        return Response(status: .noContent)
    }

    /// `DELETE /api/notices/<id>` with the publish scope: the notice is gone for every
    /// recipient (list, counts, replay), whose sessions get a `recalled` event; 204, or 404.
    private func recall(_ request: Request, id: String) async throws -> Response {
        let principal = try await authenticate(request)
        try requirePublishScope(principal, to: "recall")
        guard let noticeId = try? NoticeValidator.parseId(.string(id)) else {
            throw APIError(status: .notFound, error: "not_found", message: "no such notice")
        }
        let found: Bool
        do {
            found = try await inbox.recall(noticeId: noticeId, at: Self.nowMillis())
        } catch {
            throw Self.storeUnavailable
        }
        guard found else { throw APIError(status: .notFound, error: "not_found", message: "no such notice") }
        return Response(status: .noContent)
    }

    static let defaultReceiptsPage = 100
    static let maxReceiptsPage = 1_000

    /// `GET /api/notices/<id>/receipts?limit=100&after=<userId>` with the publish scope: how many
    /// users the notice is for and how many of them it was delivered to, seen and read by, and
    /// a page of them in user id order (`next`: the `after` of the following page).
    private func receipts(_ request: Request, id: String) async throws -> Response {
        let principal = try await authenticate(request)
        try requirePublishScope(principal, to: "read receipts")
        guard let noticeId = try? NoticeValidator.parseId(.string(id)) else {
            throw APIError(status: .notFound, error: "not_found", message: "no such notice")
        }
        let parameters = request.uri.queryParameters
        let limit = try Self.integer(parameters, "limit", in: 1...Self.maxReceiptsPage) ?? Self.defaultReceiptsPage
        var after: String?
        if let text = parameters.get("after") {
            guard (try? NoticeValidator.parseUserId(.string(text), field: "after")) != nil else {
                throw APIError(status: .badRequest, error: "invalid_request", message: "after must be a user id")
            }
            after = text
        }
        let found: NoticeReceipts?
        do {
            found = try await store.receipts(noticeId: noticeId, after: after, limit: limit)
        } catch {
            throw Self.storeUnavailable
        }
        guard let receipts = found else { throw APIError(status: .notFound, error: "not_found", message: "no such notice") }
        let users = receipts.page.map { user in
            JSONValue.object(
                JSONObject([
                    ("userId", .string(user.userId)), ("deliveredAt", Self.time(user.deliveredAt)), ("seenAt", Self.time(user.seenAt)),
                    ("readAt", Self.time(user.readAt)),
                ])
            )
        }
        let next: JSONValue = receipts.page.count == limit ? receipts.page.last.map { .string($0.userId) } ?? .null : .null
        return Self.json(
            .object(
                JSONObject([
                    ("id", .string(String(noticeId))), ("broadcast", .bool(receipts.announcement)),
                    ("recipients", .number(String(receipts.recipients))),
                    ("delivered", .number(String(receipts.delivered))), ("seen", .number(String(receipts.seen))),
                    ("read", .number(String(receipts.read))), ("users", .array(users)), ("next", next),
                ])
            )
        )
    }

    /// 403 unless the token carries the publish scope.
    private func requirePublishScope(_ principal: Principal, to what: String) throws {
        guard principal.scopes.contains(publishScope) else {
            throw APIError(status: .forbidden, error: "insufficient_scope", message: "to \(what) needs the scope \(publishScope)")
        }
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

    static let storeUnavailable = APIError(
        status: .serviceUnavailable,
        error: "store_unavailable",
        message: "the notice store is unavailable; try again"
    )

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// A 200 answer with a JSON body, never cached (it is one user's).
    static func json(_ body: JSONValue) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: .init(string: body.serialized))
        )
    }

    /// The query parameter `name` as an integer in `range`; `nil` when absent, 400 otherwise.
    static func integer(_ parameters: Parameters, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = parameters.get(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError(
                status: .badRequest,
                error: "invalid_request",
                message: "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)"
            )
        }
        return value
    }

    /// An API time: RFC 3339 (as in the pushed notice), or null for "not yet".
    static func time(_ millis: Int64?) -> JSONValue { millis.map { .string(NoticeTimestamp.rfc3339(millis: $0)) } ?? .null }

    /// The `category` query parameter, bounded as a record's category is.
    static func category(_ parameters: Parameters) throws -> String? {
        guard let text = parameters.get("category") else { return nil }
        do {
            return try NoticeValidator.parseCategory(.string(text))
        } catch {
            throw APIError(status: .badRequest, error: "invalid_request", message: error.description)
        }
    }

    /// The caller's principal, from `Authorization: Bearer <token>`; 401 otherwise.
    private func authenticate(_ request: Request) async throws -> Principal {
        try await BearerAuthentication(verifier: verifier).principal(of: request)
    }

    /// The list query from `unread`, `archived`, `category`, `limit` and `before`; 400 with the
    /// reason when one is malformed.
    static func query(_ parameters: Parameters, userId: String) throws -> NoticeQuery {
        var query = NoticeQuery(userId: userId, limit: defaultPageSize)
        for (name, flag) in [("unread", \NoticeQuery.unreadOnly), ("archived", \NoticeQuery.archived)] {
            guard let text = parameters.get(name) else { continue }
            guard let value = Bool(text.lowercased()) else {
                throw APIError(status: .badRequest, error: "invalid_request", message: "\(name) must be true or false")
            }
            query[keyPath: flag] = value
        }
        query.category = try category(parameters)
        if let limit = try integer(parameters, "limit", in: 1...maxPageSize) { query.limit = limit }
        if let before = parameters.get("before") {
            guard let id = try? NoticeValidator.parseId(.string(before)) else {
                throw APIError(status: .badRequest, error: "invalid_request", message: "before must be a notice id")
            }
            query.before = id
        }
        return query
    }

    /// One notice as listed: its id, category, times (RFC 3339, as in the pushed notice; `null`:
    /// not yet) and the JSON a browser received.
    static func item(_ stored: StoredNoticeRow) -> JSONValue {
        let notice = (try? JSONParser.parse(Array(stored.row.payload.utf8))) ?? .string(stored.row.payload)
        return .object(
            JSONObject([
                ("id", .string(String(stored.row.noticeId))),
                ("category", stored.row.category.map(JSONValue.string) ?? .null),
                ("createdAt", time(stored.row.createdAt)),
                ("deliveredAt", time(stored.deliveredAt)),
                ("seenAt", time(stored.seenAt)),
                ("readAt", time(stored.readAt)),
                ("archivedAt", time(stored.archivedAt)),
                ("notice", notice),
            ])
        )
    }
}
