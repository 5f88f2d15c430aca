/// Why a queue message is not a valid notice record; its description goes into the
/// dead-letter header `x-notice-error`.
public struct NoticeValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}
