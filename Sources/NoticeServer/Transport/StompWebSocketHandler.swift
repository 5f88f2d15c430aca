import NIOCore
import NIOWebSocket
import StompServer

/// The WebSocket side of one STOMP session at `/ws`, on the connection's event loop: hands
/// text and binary messages to the ``StompConnection``, answers pings, echoes the client's
/// close, and stops reading while the session's driver is behind (TCP then pushes back).
final class StompWebSocketHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let connection: StompConnection
    private var paused = false

    init(connection: StompConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            if !connection.receive(frame.unmaskedData) { pauseReading(context: context) }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            connection.inboundClosed()
            // Echo the status code (RFC 6455 §5.5.1), then close the TCP connection.
            var data = frame.unmaskedData
            let code = data.readSlice(length: 2) ?? ByteBuffer()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))).whenComplete { _ in
                channel.close(promise: nil)
            }
        default:
            break
        }
    }

    /// The client closed its side (Hummingbird's server allows half-closure, so this comes
    /// instead of `channelInactive`): nothing more will come, close ours too; the session
    /// hears of it from `channelInactive`.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.inboundClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Stops reading until the connection has caught up; it calls back (from the driver's
    /// thread), and reading resumes on the channel's event loop.
    private func pauseReading(context: ChannelHandlerContext) {
        guard !paused else { return }
        paused = true
        let channel = context.channel
        channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        connection.whenReadyToReceive {
            channel.eventLoop.execute {
                handler.value.paused = false
                guard channel.isActive else { return }
                channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            }
        }
    }
}

/// Writes STOMP frames as WebSocket text messages on a channel, from the session's driver.
/// A write does not wait unless the channel is over its write buffer's high-water mark; then
/// it waits until that message is on the socket, so a slow reader's notices queue in the
/// ``StompConnection`` (where they are bounded), not in the channel.
struct ChannelStompOutbound: StompOutbound {
    let channel: any Channel

    func send(_ bytes: [UInt8]) async throws {
        guard channel.isActive else { throw ChannelError.ioOnClosedChannel }
        let frame = Self.textFrame(bytes)
        if channel.isWritable {
            channel.writeAndFlush(frame, promise: nil)
        } else {
            try await channel.writeAndFlush(frame).get()
        }
    }

    var isReadyNow: Bool { channel.isWritable }

    func sendNow(_ bytes: [UInt8]) -> Bool {
        guard channel.isActive else { return false }
        channel.writeAndFlush(Self.textFrame(bytes), promise: nil)
        return true
    }

    private static func textFrame(_ bytes: [UInt8]) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: bytes))
    }

    /// A close frame (1000, normal closure), then the connection.
    func close() async {
        try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer(bytes: [0x03, 0xE8]))).get()
        try? await channel.close().get()
    }
}
