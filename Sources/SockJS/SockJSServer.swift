public import Hummingbird
import HummingbirdWebSocket
public import Logging
public import ServiceLifecycle
import Synchronization

/// A SockJS 0.3 endpoint under `prefix` (e.g. `/ws`): the routes of every transport, the
/// session table, and (as a `Service`) the reaper that sends heartbeats and forgets idle
/// sessions, and the tasks that run ``handler`` once per session.
///
/// Add it to the service group after the HTTP server, so that on shutdown it ends its
/// sessions (and with them the streaming responses) before the server stops.
public final class SockJSServer<Context: SockJSRequestContext>: Service, Sendable {
    /// Runs for each session, from its first request until it closes; the session is closed
    /// when it returns.
    public typealias Handler = @Sendable (SockJSSession) async -> Void
    /// Throws to refuse `request` (`upgrade`: a WebSocket handshake): an HTTP request gets the
    /// error's response (an `HTTPResponseError` chooses it); a handshake is not upgraded.
    public typealias RequestFilter = @Sendable (_ request: Request, _ context: Context, _ upgrade: Bool) throws -> Void

    let prefix: String
    let configuration: SockJSConfiguration
    let filter: RequestFilter
    let handler: Handler
    let logger: Logger
    /// HTTP sessions by the id in their URLs; WebSocket ones by a number of their own, in a
    /// key space no URL can reach.
    enum SessionKey: Hashable {
        case id(String)
        case webSocket(UInt64)
    }

    private let sessions = Mutex<[SessionKey: SockJSSession]>([:])
    private let starts: AsyncStream<SockJSSession>
    private let startInput: AsyncStream<SockJSSession>.Continuation
    private let privateIds = Atomic<UInt64>(0)
    private let running = Atomic<Int>(0)

    /// An endpoint; routes come from ``addRoutes(to:webSocketRouter:)``, and nothing runs
    /// until ``run()`` does.
    public init(
        prefix: String,
        configuration: SockJSConfiguration = .init(),
        logger: Logger,
        filter: @escaping RequestFilter = { _, _, _ in },
        handler: @escaping Handler
    ) {
        self.prefix = prefix
        self.configuration = configuration
        self.filter = filter
        self.handler = handler
        self.logger = logger
        (starts, startInput) = AsyncStream.makeStream(of: SockJSSession.self)
    }

    /// Sessions open now.
    public var sessionCount: Int { sessions.withLock { $0.count } }

    // MARK: Sessions

    enum Lookup {
        case existing(SockJSSession)
        case created(SockJSSession)
        case full
    }

    /// The session `id`, opened now for `transport` if there is none.
    func session(id: String, transport: SockJSTransport, request: Request) -> Lookup {
        session(key: .id(id), transport: transport, request: request)
    }

    private func session(key: SessionKey, transport: SockJSTransport, request: Request) -> Lookup {
        let result: Lookup = sessions.withLock { sessions in
            if let session = sessions[key] { return .existing(session) }
            guard sessions.count < configuration.maxSessions else { return .full }
            let id: String
            switch key {
            case .id(let value): id = value
            case .webSocket(let number): id = "websocket-\(number)"
            }
            let session = SockJSSession(id: id, transport: transport, uri: request.uri, headers: request.headers, configuration: configuration)
            sessions[key] = session
            return .created(session)
        }
        if case .created(let session) = result { startInput.yield(session) }
        if case .full = result { logger.warning("sockjs session limit reached", metadata: ["sockjs.max_sessions": "\(configuration.maxSessions)"]) }
        return result
    }

    /// The session `id` if it exists.
    func existingSession(id: String) -> SockJSSession? {
        sessions.withLock { $0[.id(id)] }
    }

    /// A session for one WebSocket: its lifetime is the socket's, so it is kept under a
    /// private key (two sockets may use the same session id, and none may reach another's).
    func webSocketSession(transport: SockJSTransport, request: Request) -> (key: SessionKey, session: SockJSSession)? {
        let key = SessionKey.webSocket(privateIds.wrappingAdd(1, ordering: .relaxed).newValue)
        guard case .created(let session) = session(key: key, transport: transport, request: request) else { return nil }
        return (key, session)
    }

    /// Forgets the session kept under `key`.
    func forget(_ key: SessionKey) {
        sessions.withLock { _ = $0.removeValue(forKey: key) }
    }

    // MARK: Service

    /// Runs the reaper and each session's handler until graceful shutdown; then gives
    /// handlers up to 5 s to finish and closes what is left.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.reap() }
            await withGracefulShutdownHandler {
                for await session in starts {
                    running.wrappingAdd(1, ordering: .relaxed)
                    group.addTask {
                        await self.handler(session)
                        session.close()
                        self.running.wrappingSubtract(1, ordering: .relaxed)
                    }
                }
            } onGracefulShutdown: {
                self.startInput.finish()
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while running.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
            for session in sessions.withLock({ Array($0.values) }) { session.close() }
            // Let receivers write the close frames before the HTTP server goes.
            try? await Task.sleep(for: .milliseconds(100))
            group.cancelAll()
        }
    }

    private func reap() async {
        let period = min(Duration.seconds(1), configuration.disconnectDelay / 5, configuration.heartbeatInterval / 5)
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            let now = ContinuousClock.now
            let all = sessions.withLock { Array($0) }
            let expired = all.filter { $0.value.tick(now: now) }.map(\.key)
            if !expired.isEmpty {
                sessions.withLock { sessions in
                    for key in expired { sessions.removeValue(forKey: key) }
                }
            }
        }
    }
}
