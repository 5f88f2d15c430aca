/// Who a valid access token belongs to.
public struct Principal: Sendable, Hashable {
    public var userId: String
    /// Unix time in seconds at which the token expires, if it does: within
    /// `0...maxExpiresAt`, so that it converts to milliseconds (or nanoseconds from now) without
    /// overflow.
    public var expiresAt: Int64?
    public var scopes: Set<String>

    /// 9999-12-31T23:59:59Z. Identity providers issue tokens "for ever" with `exp` values up to
    /// `Int64.max`; later than this is the same as this.
    public static let maxExpiresAt: Int64 = 253_402_300_799

    /// `expiresAt` is bounded to `0...maxExpiresAt`.
    public init(userId: String, expiresAt: Int64? = nil, scopes: Set<String> = []) {
        self.userId = userId
        self.expiresAt = expiresAt.map { min(max($0, 0), Self.maxExpiresAt) }
        self.scopes = scopes
    }

    /// ``expiresAt`` in Unix milliseconds.
    public var expiresAtMillis: Int64? { expiresAt.map { $0 * 1000 } }
}

/// Checks OAuth2 access tokens (the CONNECT check, SPEC §4–5).
///
/// Implementations fail closed: any doubt is `nil`. They never log a token.
public protocol TokenVerifier: Sendable {
    /// The principal of an active token, or `nil`.
    func verify(token: String) async -> Principal?
}

/// `NOTICE_DEV_TOKENS`: a fixed token → user table, for development only.
public struct DevTokenVerifier: TokenVerifier {
    public let users: [String: String]

    public init(users: [String: String]) { self.users = users }

    /// Parses `token1:user1,token2:user2`.
    public init(parsing spec: String) throws(DevTokenError) {
        var users: [String: String] = [:]
        for (index, entry) in spec.split(separator: ",").enumerated() {
            let parts = entry.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !parts[1].contains("/") else {
                throw DevTokenError(entry: "entry \(index + 1)")
            }
            users[String(parts[0]).trimmingWhitespace] = String(parts[1]).trimmingWhitespace
        }
        guard !users.isEmpty else { throw DevTokenError(entry: "the list") }
        self.users = users
    }

    public func verify(token: String) async -> Principal? {
        users[token].map { Principal(userId: $0, scopes: ["notice:publish"]) }
    }
}

/// A malformed `NOTICE_DEV_TOKENS` entry (named by position, never by its token).
public struct DevTokenError: Error, Sendable, CustomStringConvertible {
    public let entry: String
    public var description: String { "NOTICE_DEV_TOKENS: \(entry) is not of the form token:user" }
}

extension String {
    var trimmingWhitespace: String {
        var slice = self[...]
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return String(slice)
    }
}
