import NIOCore
import NIOHTTP1

/// At the socket end of an HTTP connection's pipeline: notes whether any response bytes were
/// written, so that a connection whose request never parsed gets `400 Bad Request` and a close
/// instead of silence. Used on the channel's event loop only.
final class UnansweredRequestGuard: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var answered = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        answered = true
        context.write(data, promise: promise)
    }

    /// Writes a bare 400 if nothing was ever written, then closes (either way).
    func refuseIfUnanswered() {
        guard let context, context.channel.isActive else { return }
        guard !answered else {
            context.close(promise: nil)
            return
        }
        answered = true
        let response = ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(response))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Hummingbird's upgrade negotiation logs a request head that does not parse and leaves the
/// connection open without a word: this answers it `400` (through ``UnansweredRequestGuard``)
/// and closes it. Passes everything else on.
final class ParseErrorCatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let guarded: NIOLoopBound<UnansweredRequestGuard>

    init(guarded: NIOLoopBound<UnansweredRequestGuard>) { self.guarded = guarded }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError { guarded.value.refuseIfUnanswered() }
        context.fireErrorCaught(error)
    }
}
