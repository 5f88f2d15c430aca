/// Settings of a SockJS endpoint; the defaults are sockjs-node's.
public struct SockJSConfiguration: Sendable, Hashable {
    /// An `h` frame goes to a receiver that has had no other frame for this long.
    public var heartbeatInterval: Duration = .seconds(25)
    /// A session without a receiver for this long is closed and forgotten.
    public var disconnectDelay: Duration = .seconds(5)
    /// A streaming response is ended after this many bytes of frames (the client reconnects),
    /// so that the browser can free what it has received.
    public var responseLimit: Int = 128 * 1024
    /// Most sessions open at once; a request that would open another gets 503.
    public var maxSessions: Int = 10_000
    /// Most bytes of messages queued for a session's receiver; past it the session is closed
    /// (a client that stops polling cannot grow the server's memory).
    public var maxQueuedBytes: Int = 1 << 20
    /// Largest `xhr_send` body and WebSocket message accepted from a client.
    public var maxMessageBytes: Int = 64 * 1024
    /// Inbound messages the application has not taken yet, in bytes, above which `xhr_send`
    /// and WebSocket readers wait (push-back on a client that sends faster than it is served).
    public var maxPendingInboundBytes: Int = 256 * 1024
    /// The sockjs-client script the `iframe.html` page loads.
    public var clientScriptURL: String = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"
    /// Whether `/info` offers WebSocket (and the `websocket` routes are served).
    public var webSocketEnabled = true

    /// The defaults.
    public init() {}
}

/// How a SockJS session's receivers reach the browser.
public enum SockJSTransport: String, Sendable, CaseIterable {
    case webSocket = "websocket"
    case rawWebSocket = "raw_websocket"
    case xhrStreaming = "xhr_streaming"
    case xhrPolling = "xhr"
    case eventSource = "eventsource"
    case htmlFile = "htmlfile"
}
