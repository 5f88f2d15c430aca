/// One STOMP frame: a command, its headers and a body of raw bytes.
public struct StompFrame: Sendable, Hashable {
    public var command: StompCommand
    public var headers: StompHeaders
    public var body: [UInt8]

    public init(_ command: StompCommand, headers: StompHeaders = [:], body: [UInt8] = []) {
        self.command = command
        self.headers = headers
        self.body = body
    }

    /// The body as UTF-8 text, or `nil` when it is not valid UTF-8.
    public var bodyText: String? {
        String(validating: body, as: UTF8.self)
    }
}
