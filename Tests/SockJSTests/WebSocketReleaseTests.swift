import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NoticeTesting
import ServiceLifecycle
import SockJS
import Synchronization
import Testing

/// Request contexts alive now, for ``WebSocketReleaseTests``.
private let liveContexts = Atomic<Int>(0)

/// Counts itself while alive: a context that is never freed keeps one.
private final class ContextTracker: Sendable {
    init() { liveContexts.add(1, ordering: .relaxed) }
    deinit { liveContexts.subtract(1, ordering: .relaxed) }
}

/// A SockJS request context that can be counted.
private struct TrackedContext: SockJSRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocketSlot = WebSocketHandlerSlot<Self>()
    var webSocket: WebSocketHandlerReference<Self> { webSocketSlot.value }
    let channel: any Channel
    private let tracker = ContextTracker()

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// A closed SockJS WebSocket lets its connection go (issue #15): HummingbirdWebSocket keeps the
/// upgrade's handler with a copy of the context inside the context's own reference, a cycle
/// that kept each connection (channel, pipeline, buffers: ~3.4 KiB) for ever. `.serialized`:
/// the count is global to this file.
@Suite(.serialized) struct WebSocketReleaseTests {
    @Test(arguments: ["/t/000/abc/websocket", "/t/websocket"])
    func closedWebSocketSessionsFreeTheirContexts(_ path: String) async throws {
        var logger = Logger(label: "test.sockjs")
        logger.logLevel = .critical
        let sockJS = SockJSServer<TrackedContext>(prefix: "/t", configuration: EchoServer.testConfiguration, logger: logger) { session in
            for await message in session.messages {
                do { try session.send(message) } catch { return }
            }
        }
        let router = Router(context: TrackedContext.self)
        let webSocketRouter = Router(context: TrackedContext.self)
        sockJS.addRoutes(to: router, webSocketRouter: webSocketRouter)
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: webSocketRouter),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in ports.continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(services: [app, sockJS], logger: logger)
        let task = Task { try await group.run() }
        var iterator = ports.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())

        for index in 0..<20 {
            let socket = try await BlockingWebSocket.open(port: port, path: path.replacingOccurrences(of: "abc", with: "s\(index)"))
            if path.hasSuffix("/abc/websocket") { #expect(await socket.next() == "o") }
            socket.send(path.hasSuffix("/abc/websocket") ? #"["ping"]"# : "ping")
            #expect(await socket.next() != nil, "echoed")
            socket.close()
            #expect(await socket.closed())
        }
        // Every connection is closed: only contexts still referenced from somewhere remain.
        let deadline = ContinuousClock.now + .seconds(30)
        while liveContexts.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(liveContexts.load(ordering: .relaxed) == 0, "contexts left: \(liveContexts.load(ordering: .relaxed))")
        await group.triggerGracefulShutdown()
        try await task.value
    }
}
