import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import TokenIntrospection

/// A real HTTP authorization server for tests: RFC 7662 at `POST /introspect` and Spring's
/// `POST /oauth/check_token`, HTTP Basic client `notice`/`s3cret`. It counts requests and
/// can be told to be slow, to fail with 500, or to revoke a token.
final class AuthorizationServer: Sendable {
    struct Token: Sendable {
        var userId: String
        /// Unix seconds.
        var expiresAt: Int64?
        var scopes: String = "read"
    }

    private struct State {
        var tokens: [String: Token] = [:]
        var requests = 0
        var delay: Duration = .zero
        var failing = false
    }

    private let state = Mutex(State())
    private let boundPort = Atomic<Int>(0)
    var port: Int { boundPort.load(ordering: .relaxed) }
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    private init(group: ServiceGroup, task: Task<Void, any Error>) {
        self.group = group
        self.task = task
    }

    static func start() async throws -> AuthorizationServer {
        let ports = TestQueue<Int>()
        let box = Mutex<AuthorizationServer?>(nil)
        let router = Router()
        router.post("/introspect") { request, _ -> Response in
            try await box.withLock { $0! }.answer(request, spring: false)
        }
        router.post("/oauth/check_token") { request, _ -> Response in
            try await box.withLock { $0! }.answer(request, spring: true)
        }
        var logger = Logger(label: "test.authorization-server")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { ports.push($0.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        let server = AuthorizationServer(group: group, task: task)
        box.withLock { $0 = server }
        guard let port = await ports.next() else { throw TestFailure("authorization server did not start") }
        server.boundPort.store(port, ordering: .relaxed)
        return server
    }

    var introspectionURL: String { "http://127.0.0.1:\(port)/introspect" }
    var checkTokenURL: String { "http://127.0.0.1:\(port)/oauth/check_token" }

    /// The service's token check against this server, with its client's credentials.
    func introspection(style: IntrospectionConfiguration.Style = .rfc7662) -> IntrospectionConfiguration {
        IntrospectionConfiguration(
            url: style == .spring ? checkTokenURL : introspectionURL,
            style: style,
            clientId: "notice",
            clientSecret: "s3cret"
        )
    }
    var requests: Int { state.withLock { $0.requests } }

    func issue(_ token: String, to userId: String, expiresIn seconds: Int64? = 3600, scopes: String = "read") {
        let exp = seconds.map { Int64(Date().timeIntervalSince1970) + $0 }
        state.withLock { $0.tokens[token] = Token(userId: userId, expiresAt: exp, scopes: scopes) }
    }

    /// A token that expires at the Unix second `expiresAt` exactly (no second boundary
    /// between the test's clock reading and the server's).
    func issue(_ token: String, to userId: String, expiresAt: Int64, scopes: String = "read") {
        state.withLock { $0.tokens[token] = Token(userId: userId, expiresAt: expiresAt, scopes: scopes) }
    }

    func revoke(_ token: String) { _ = state.withLock { $0.tokens.removeValue(forKey: token) } }
    /// Requests are answered `delay` after they arrived (also those already waiting).
    func setDelay(_ delay: Duration) { state.withLock { $0.delay = delay } }
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    private func answer(_ request: Request, spring: Bool) async throws -> Response {
        let failing = state.withLock { state in
            state.requests += 1
            return state.failing
        }
        // Held for the delay as it is set now: a test that lowers it lets waiting requests go.
        let arrived = ContinuousClock.now
        while ContinuousClock.now - arrived < state.withLock({ $0.delay }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        if failing { return Response(status: .internalServerError) }
        guard request.headers[.authorization] == "Basic " + Data("notice:s3cret".utf8).base64EncodedString() else {
            return Response(status: .unauthorized)
        }
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
            if parts.count == 2 { form[parts[0]] = parts[1] }
        }
        let token = form["token"].flatMap { token in state.withLock { $0.tokens[token] } }
        let now = Int64(Date().timeIntervalSince1970)
        let active = token.map { $0.expiresAt.map { $0 > now } ?? true } ?? false
        var claims: [String: Any]
        if spring {
            guard active, let token else {
                return json(.badRequest, ["error": "invalid_token", "error_description": "Token was not recognised"])
            }
            claims = ["user_name": token.userId, "scope": token.scopes.split(separator: " ").map(String.init), "client_id": "web"]
        } else {
            guard form["token_type_hint"] == "access_token" else { return json(.badRequest, ["error": "invalid_request"]) }
            guard active, let token else { return json(.ok, ["active": false]) }
            claims = ["active": true, "sub": token.userId, "scope": token.scopes, "client_id": "web"]
        }
        if let exp = token?.expiresAt { claims["exp"] = exp }
        return json(.ok, claims)
    }

    private func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = try! JSONSerialization.data(withJSONObject: object)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: data)))
    }
}
