/// The frames a SockJS server sends (protocol 0.3): open `o`, heartbeat `h`, messages
/// `a[...]` and close `c[code,"reason"]`. Pure text; each transport wraps them its own way.
public enum SockJSFrame: Sendable, Hashable {
    case open
    case heartbeat
    case messages([String])
    case close(code: Int, reason: String)

    /// The frame as SockJS writes it, e.g. `a["hello"]`.
    public var text: String {
        switch self {
        case .open: return "o"
        case .heartbeat: return "h"
        case .messages(let messages): return "a[" + messages.map { SockJSJSON.quote($0) }.joined(separator: ",") + "]"
        case .close(let code, let reason): return "c[\(code)," + SockJSJSON.quote(reason) + "]"
        }
    }

    /// `c[3000,"Go away!"]`: the application closed the session.
    public static let goAway = SockJSFrame.close(code: 3000, reason: "Go away!")
    /// `c[2010,"Another connection still open"]`: a second receiver on one session.
    public static let anotherConnection = SockJSFrame.close(code: 2010, reason: "Another connection still open")
    /// `c[1002,"Connection interrupted"]`: a receiver went away mid-response.
    public static let interrupted = SockJSFrame.close(code: 1002, reason: "Connection interrupted")
}
