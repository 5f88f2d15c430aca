public import Hummingbird
public import HummingbirdWebSocket
public import NIOCore

/// The request context SockJS routes need: WebSocket-capable, and with the connection's
/// channel, whose closing tells a waiting HTTP receiver that the browser went away.
public protocol SockJSRequestContext: RequestContext, WebSocketRequestContext {
    /// The connection the request came on.
    var channel: any Channel { get }
    /// Where ``webSocket`` is kept; released when a SockJS WebSocket session ends.
    var webSocketSlot: WebSocketHandlerSlot<Self> { get }
}

/// Hummingbird's WebSocket request context plus the channel: enough for a SockJS endpoint.
public struct BasicSockJSRequestContext: SockJSRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocketSlot = WebSocketHandlerSlot<Self>()
    public var webSocket: WebSocketHandlerReference<Self> { webSocketSlot.value }
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
