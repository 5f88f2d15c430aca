/// Writes encoded STOMP frames (UTF-8 text) to the client as text messages; a transport (raw
/// WebSocket, SockJS) supplies it. Bytes, not `String`: the encoder makes bytes and the
/// WebSocket frame carries them, so the common path neither validates nor copies them again.
public protocol StompOutbound: Sendable {
    func send(_ frame: [UInt8]) async throws
    func close() async
    /// Whether ``sendNow(_:)`` may be used: the transport takes more without waiting.
    var isReadyNow: Bool { get }
    /// Writes without waiting; `false` if the transport is closed. Only after ``isReadyNow``.
    func sendNow(_ frame: [UInt8]) -> Bool
}

extension StompOutbound {
    public var isReadyNow: Bool { false }
    public func sendNow(_ frame: [UInt8]) -> Bool { false }
}
