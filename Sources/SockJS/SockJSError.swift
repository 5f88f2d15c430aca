/// Why a message could not be queued for the browser.
public struct SockJSError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case sessionClosed
        case queueFull
    }

    private let kind: Kind

    /// The session is closed (by either side, or by a timeout).
    public static let sessionClosed = SockJSError(kind: .sessionClosed)
    /// The browser took too long to fetch its messages; the session has been closed.
    public static let queueFull = SockJSError(kind: .queueFull)

    public var description: String {
        switch kind {
        case .sessionClosed: return "the SockJS session is closed"
        case .queueFull: return "too many messages queued for the SockJS session; it was closed"
        }
    }
}
