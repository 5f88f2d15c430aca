import HTTPTypes
import Hummingbird

/// SPEC §3: a browser request whose `Origin` is not allowed gets 403. Requests without
/// `Origin` (non-browser clients) are allowed, and so is the page's own origin (the
/// `Origin` whose host equals the request's `Host`).
struct OriginPolicy: Sendable {
    let allowed: NoticeServiceConfiguration.AllowedOrigins

    func allows(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin]?.lowercased() else { return true }
        switch allowed {
        case .any:
            return true
        case .list(let origins):
            if origins.contains(origin) { return true }
            guard let host = request.head.authority?.lowercased() else { return false }
            return origin == "http://\(host)" || origin == "https://\(host)"
        }
    }
}
