import Hummingbird
import HummingbirdWebSocket
import NIOCore
import SockJS

/// The request context of every route: Hummingbird's WebSocket-capable context plus the
/// connection's channel (to tie a refused handshake to the answer sent on it).
struct NoticeRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    /// Released when a SockJS WebSocket session ends (``WebSocketHandlerSlot`` says why).
    let webSocketSlot = WebSocketHandlerSlot<NoticeRequestContext>()
    var webSocket: WebSocketHandlerReference<NoticeRequestContext> { webSocketSlot.value }
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
