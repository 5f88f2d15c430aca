/// Why a byte stream is not valid STOMP, or a frame breaks a limit.
public struct StompError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case unknownCommand
        case malformedHeader
        case invalidEscape
        case invalidUTF8
        case invalidContentLength
        case missingNulTerminator
        case frameTooLarge(limit: Int)
        case tooManyHeaders(limit: Int)
        case malformedLineEnding
        case invalidHeartBeat
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    /// The command line names no STOMP command.
    public static let unknownCommand = StompError(.unknownCommand)
    /// A header line has no `:` or an empty name.
    public static let malformedHeader = StompError(.malformedHeader)
    /// A header uses an escape sequence its version does not define.
    public static let invalidEscape = StompError(.invalidEscape)
    /// The command or a header is not valid UTF-8.
    public static let invalidUTF8 = StompError(.invalidUTF8)
    /// `content-length` is not a non-negative decimal number.
    public static let invalidContentLength = StompError(.invalidContentLength)
    /// The byte after `content-length` bytes of body is not NUL.
    public static let missingNulTerminator = StompError(.missingNulTerminator)
    /// A CR that does not start a CRLF line end.
    public static let malformedLineEnding = StompError(.malformedLineEnding)
    /// A `heart-beat` header that is not two non-negative integers.
    public static let invalidHeartBeat = StompError(.invalidHeartBeat)
    /// The frame is larger than the decoder accepts.
    public static func frameTooLarge(limit: Int) -> StompError { StompError(.frameTooLarge(limit: limit)) }
    /// The frame has more header lines than the decoder accepts.
    public static func tooManyHeaders(limit: Int) -> StompError { StompError(.tooManyHeaders(limit: limit)) }

    /// Whether this error is a size limit rather than a syntax error.
    public var isLimit: Bool {
        switch code {
        case .frameTooLarge, .tooManyHeaders: true
        default: false
        }
    }

    public var description: String {
        switch code {
        case .unknownCommand: "unknown command"
        case .malformedHeader: "malformed header line"
        case .invalidEscape: "invalid escape sequence in header"
        case .invalidUTF8: "header or command is not valid UTF-8"
        case .invalidContentLength: "invalid content-length"
        case .missingNulTerminator: "frame body not terminated by NUL after content-length bytes"
        case .frameTooLarge(let limit): "frame larger than \(limit) bytes"
        case .tooManyHeaders(let limit): "more than \(limit) headers"
        case .malformedLineEnding: "CR not followed by LF"
        case .invalidHeartBeat: "invalid heart-beat header"
        }
    }
}
