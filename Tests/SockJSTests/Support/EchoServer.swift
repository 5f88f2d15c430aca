import Hummingbird
import HummingbirdWebSocket
import Logging
import ServiceLifecycle
import SockJS
import Synchronization

/// A real Hummingbird server with a SockJS endpoint at `/echo` (every message comes back)
/// and one at `/close` (sessions are closed at once), as sockjs-protocol's test server has.
struct EchoServer {
    let port: Int
    let echo: SockJSServer<BasicSockJSRequestContext>
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// The test suite's settings: a short disconnect delay and a 4 KiB response limit. The
    /// heartbeat stays long: a heartbeat ends a waiting poll, so a short one would race every
    /// test that holds a poll open on a busy machine (the heartbeat test sets its own). The
    /// disconnect delay is what a test's requests between two polls must stay within; longer
    /// would lengthen every stop, which waits for sessions left open (up to 5 s).
    static var testConfiguration: SockJSConfiguration {
        var configuration = SockJSConfiguration()
        configuration.responseLimit = 4096
        configuration.heartbeatInterval = .seconds(30)
        configuration.disconnectDelay = .seconds(2)
        configuration.maxQueuedBytes = 16 * 1024
        configuration.maxMessageBytes = 8 * 1024
        return configuration
    }

    static func start(_ configuration: SockJSConfiguration = testConfiguration) async throws -> EchoServer {
        var logger = Logger(label: "test.sockjs")
        logger.logLevel = .critical
        let echo = SockJSServer<BasicSockJSRequestContext>(prefix: "/echo", configuration: configuration, logger: logger) { session in
            for await message in session.messages {
                do { try session.send(message) } catch { return }
            }
        }
        let close = SockJSServer<BasicSockJSRequestContext>(prefix: "/close", configuration: configuration, logger: logger) { _ in }
        let router = Router(context: BasicSockJSRequestContext.self)
        let webSocketRouter = Router(context: BasicSockJSRequestContext.self)
        echo.addRoutes(to: router, webSocketRouter: webSocketRouter)
        close.addRoutes(to: router, webSocketRouter: webSocketRouter)
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(
                webSocketRouter: webSocketRouter,
                configuration: .init(http1: .init(additionalChannelHandlers: [BrowserGoneHandler()]))
            ),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in ports.continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(services: [app, echo, close], logger: logger)
        let task = Task { try await group.run() }
        var iterator = ports.stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("server did not start") }
        return EchoServer(port: port, echo: echo, group: group, task: task)
    }

    var base: String { "http://127.0.0.1:\(port)/echo" }
    var closeBase: String { "http://127.0.0.1:\(port)/close" }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
