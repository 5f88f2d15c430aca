/// A failure talking to the broker.
public struct AMQPError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case invalidURL
        case connectionFailed
        case library(String)
        case brokerClosed(String)
        case notConnected
        case publishNacked
        case shutDown
        case tooLong(String)
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    /// The broker URL does not parse.
    public static let invalidURL = AMQPError(.invalidURL)
    /// TCP connect or login failed.
    public static let connectionFailed = AMQPError(.connectionFailed)
    /// Nothing can be sent: the connection is down (a reconnect is under way).
    public static let notConnected = AMQPError(.notConnected)
    /// The broker refused a published message (`basic.nack`).
    public static let publishNacked = AMQPError(.publishNacked)
    /// The connection was shut down.
    public static let shutDown = AMQPError(.shutDown)

    /// A name (exchange, queue, routing key) over AMQP's 255-byte short string; nothing was sent.
    public static func tooLong(_ what: String) -> AMQPError { AMQPError(.tooLong(what)) }

    static func library(_ message: String) -> AMQPError { AMQPError(.library(message)) }
    static func brokerClosed(_ message: String) -> AMQPError { AMQPError(.brokerClosed(message)) }

    public var description: String {
        switch code {
        case .invalidURL: "invalid AMQP URL"
        case .connectionFailed: "could not connect to the broker"
        case .library(let message): "rabbitmq-c: \(message)"
        case .brokerClosed(let message): "broker closed: \(message)"
        case .notConnected: "not connected to the broker"
        case .publishNacked: "the broker refused the message"
        case .shutDown: "the connection was shut down"
        case .tooLong(let what): "\(what) is longer than AMQP's 255 bytes"
        }
    }
}
