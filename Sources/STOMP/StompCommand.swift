/// A STOMP frame command (STOMP 1.2 §"Client Frames" and §"Server Frames").
public enum StompCommand: String, Sendable, Hashable, CaseIterable {
    // Client frames.
    case connect = "CONNECT"
    case stomp = "STOMP"
    case send = "SEND"
    case subscribe = "SUBSCRIBE"
    case unsubscribe = "UNSUBSCRIBE"
    case ack = "ACK"
    case nack = "NACK"
    case begin = "BEGIN"
    case commit = "COMMIT"
    case abort = "ABORT"
    case disconnect = "DISCONNECT"
    // Server frames.
    case connected = "CONNECTED"
    case message = "MESSAGE"
    case receipt = "RECEIPT"
    case error = "ERROR"

    /// CONNECT, STOMP and CONNECTED headers are never escaped (STOMP 1.2 §"Value Encoding").
    public var escapesHeaders: Bool {
        switch self {
        case .connect, .stomp, .connected: false
        default: true
        }
    }

    init?(bytes: ArraySlice<UInt8>) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        self.init(rawValue: text)
    }
}
