public import HummingbirdWebSocket
import Synchronization

/// A request context's `WebSocketHandlerReference`, held so that it can be let go once the
/// socket has ended.
///
/// HummingbirdWebSocket 2.8 keeps the handler of an upgrade in the context's reference
/// together with a copy of the context, which holds the reference: a cycle that kept every
/// upgraded connection (its channel, pipeline and buffers) after it closed. Releasing
/// the slot when the WebSocket session ends breaks it.
public final class WebSocketHandlerSlot<Context: WebSocketRequestContext>: Sendable {
    private let reference = Mutex<WebSocketHandlerReference<Context>?>(WebSocketHandlerReference())

    public init() {}

    /// The reference; a fresh, empty one once released.
    public var value: WebSocketHandlerReference<Context> { reference.withLock { $0 } ?? WebSocketHandlerReference() }

    /// Lets the reference (and with it the upgraded connection) go.
    public func release() { reference.withLock { $0 = nil } }
}
