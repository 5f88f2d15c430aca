public import NIOCore

/// Closes an HTTP connection as soon as the browser closes its side of it.
///
/// Hummingbird allows half-closed connections, so a browser that goes away while a SockJS
/// receiver is waiting (a long poll, a stream between frames) would be noticed only at the
/// next write, up to a heartbeat later, and its next request would be refused with
/// `c[2010,"Another connection still open"]`. Browsers never half-close an HTTP connection
/// they still want an answer on. Add it to the HTTP/1 server's `additionalChannelHandlers`.
public final class BrowserGoneHandler: ChannelInboundHandler, RemovableChannelHandler {
    // Reads pass through untouched (the default `channelRead` forwards them as they are).
    public typealias InboundIn = NIOAny

    public init() {}

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}
