import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import StompServer

/// The server's connections: a STOMP WebSocket handshake on `/ws` is served by the channel
/// handlers of ``WebSocketEndpoint`` on the connection's event loop, so an open session
/// holds no task while it is idle; everything else (HTTP routes, SockJS and its WebSocket
/// transports) goes to Hummingbird's HTTP/1 channel with WebSocket upgrade, unchanged.
///
/// Which one is decided from the first request's head (``HandshakeSniffer``), before any
/// HTTP handler sees a byte.
struct NoticeServerChannel: ServerChildChannel {
    enum Route: Sendable {
        /// A STOMP WebSocket: the session once the upgrade is done (`nil`: refused or closed).
        case stomp(EventLoopFuture<StompConnection?>)
        case hummingbird(HTTP1WebSocketUpgradeChannel.Value)
    }

    struct Value: ServerChildChannelValue {
        let route: EventLoopFuture<Route>
        let channel: any Channel
        /// Set for the HTTP route: answers what Hummingbird could not parse.
        let unanswered: NIOLoopBound<UnansweredRequestGuard>?
    }

    let hummingbird: HTTP1WebSocketUpgradeChannel
    let stomp: WebSocketEndpoint
    /// A connection that has not sent a complete first request head by then is closed.
    let headTimeout: TimeAmount
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536)

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // NIO keeps each connection's last receive buffer for the next read, at the size its
            // adaptive allocator reached: 2 KiB by default, per idle WebSocket. Start smaller;
            // a connection that receives more grows it as before.
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
            let route = channel.eventLoop.makePromise(of: Route.self)
            let unanswered = UnansweredRequestGuard()
            try channel.pipeline.syncOperations.addHandler(unanswered, position: .first)
            let guarded = NIOLoopBound(unanswered, eventLoop: channel.eventLoop)
            let sniffer = HandshakeSniffer(route: route, timeout: headTimeout) { channel, isStompHandshake in
                if isStompHandshake {
                    // A STOMP session answers for itself: no per-connection guard kept for it.
                    channel.pipeline.syncOperations.removeHandler(guarded.value, promise: nil)
                    let upgraded = channel.eventLoop.makePromise(of: StompConnection?.self)
                    try stomp.configure(channel, upgraded: upgraded)
                    return channel.eventLoop.makeSucceededFuture(.stomp(upgraded.futureResult))
                }
                // Completed at once on the event loop: its handlers are in place when the bytes follow.
                return hummingbird.setup(channel: channel, logger: logger).flatMapThrowing { value in
                    // Behind Hummingbird's handlers: hears of a head that does not parse.
                    try channel.pipeline.syncOperations.addHandler(ParseErrorCatcher(guarded: guarded), position: .last)
                    return .hummingbird(value)
                }
            }
            try channel.pipeline.syncOperations.addHandler(sniffer)
            return Value(route: route.futureResult, channel: channel, unanswered: guarded)
        }
    }

    func handle(value: Value, logger: Logger) async {
        let route: Route
        do {
            route = try await value.route.get()
        } catch {
            return  // closed before a complete request head
        }
        switch route {
        case .hummingbird(let hummingbirdValue):
            await hummingbird.handle(value: hummingbirdValue, logger: logger)
            // Served and done: nothing of the connection outlives this.
            if let unanswered = value.unanswered {
                value.channel.eventLoop.execute { unanswered.value.refuseIfUnanswered() }
            }
        case .stomp(let upgraded):
            // This task ends here; the connection lives on in its channel handlers (a shutdown
            // reaches its session through the hub: `SessionCloser`).
            guard let connection = try? await upgraded.get() else { return }
            stomp.start(connection, on: value.channel)
        }
    }
}

/// Holds the first bytes of a connection until its first request head is complete, asks
/// whether it is a STOMP WebSocket handshake (`GET /ws` with `Upgrade: websocket`), lets
/// `configure` build the pipeline for that answer, hands it the bytes and leaves.
final class HandshakeSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias Configure = (any Channel, _ isStompHandshake: Bool) throws -> EventLoopFuture<NoticeServerChannel.Route>

    /// A head longer than this is not ours to judge (Hummingbird's decoder refuses it).
    static let maxHeadBytes = 16 * 1024

    private let route: EventLoopPromise<NoticeServerChannel.Route>
    private let configure: Configure
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var buffered: ByteBuffer?
    private var decided = false

    init(route: EventLoopPromise<NoticeServerChannel.Route>, timeout: TimeAmount, configure: @escaping Configure) {
        self.route = route
        self.timeout = timeout
        self.configure = configure
    }

    /// A client that connects and never completes a request head (or sends nothing) is closed
    /// after ``timeout``: it would otherwise hold a descriptor for ever.
    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !decided else {
            context.fireChannelRead(data)
            return
        }
        if buffered == nil {
            buffered = bytes
        } else {
            buffered!.writeBuffer(&bytes)
        }
        guard let head = buffered, let isStompHandshake = Self.judge(head) else { return }
        decided = true
        buffered = nil
        do {
            route.completeWith(try configure(context.channel, isStompHandshake))
        } catch {
            route.fail(error)
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(head))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if decided {
            context.fireChannelReadComplete()
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            route.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    /// The client closed its side before a complete request head (the server allows
    /// half-closure, so this comes instead of `channelInactive`): there will be no request.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !decided, let event = event as? ChannelEvent, event == .inputClosed {
            decided = true
            route.fail(ChannelError.eof)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard decided else {
            route.fail(error)
            decided = true
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    /// Whether `bytes` begin with a STOMP WebSocket handshake; `nil` while the head is incomplete.
    static func judge(_ bytes: ByteBuffer) -> Bool? {
        let view = bytes.readableBytesView
        let end = view.withContiguousStorageIfAvailable { Self.headEnd($0) } ?? Self.headEnd(Array(view))
        guard let end else { return view.count > maxHeadBytes ? false : nil }
        let head = String(decoding: view.prefix(end), as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        let requestLine = lines.popFirst()?.split(separator: " ") ?? []
        guard requestLine.count == 3, requestLine[0] == "GET" else { return false }
        let path = requestLine[1].prefix { $0 != "?" }
        guard path == WebSocketEndpoint.path else { return false }
        return lines.contains { line in
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == "upgrade" else { return false }
            return line[line.index(after: colon)...].lowercased().contains("websocket")
        }
    }

    /// The offset of the blank line ending a request head.
    private static func headEnd(_ bytes: some Collection<UInt8>) -> Int? {
        var matched = 0
        for (offset, byte) in bytes.enumerated() {
            let expected: UInt8 = matched % 2 == 0 ? 13 : 10
            if byte == expected {
                matched += 1
                if matched == 4 { return offset - 3 }
            } else {
                matched = byte == 13 ? 1 : 0
            }
        }
        return nil
    }
}
