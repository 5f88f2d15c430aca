/// How to reach the authorization server's introspection endpoint (SPEC §5).
public struct IntrospectionConfiguration: Sendable, Hashable {
    /// Which protocol the endpoint speaks.
    public enum Style: String, Sendable, Hashable {
        /// RFC 7662: form `token`, `token_type_hint=access_token`; JSON with `active`.
        case rfc7662
        /// Spring Security OAuth `/oauth/check_token`: form `token`; 200 with claims is
        /// active, 400/401 (`{"error":"invalid_token"}`) is not.
        case spring
    }

    public var url: String
    public var style: Style
    /// HTTP Basic credentials of this service as an OAuth2 client.
    public var clientId: String?
    public var clientSecret: String?
    /// The user id is the first of these claims present (strings and numbers alike).
    public var userIdClaims: [String]
    /// Longest time a positive answer is trusted (never past the token's `exp`).
    public var cacheTTL: Duration
    /// How long a negative answer is remembered.
    public var negativeCacheTTL: Duration
    /// Each request's deadline; a slower endpoint denies.
    public var timeout: Duration
    /// Most tokens remembered; the oldest are dropped beyond it.
    public var maxCacheEntries: Int
    /// A longer token is denied without asking the endpoint.
    public var maxTokenBytes: Int
    /// Requests to the endpoint in flight at once; a check beyond it is denied (not cached).
    public var maxConcurrentRequests: Int
    /// Requests to the endpoint per second, sustained (a burst of as many is allowed): a flood
    /// of unknown tokens cannot flood the endpoint. A check beyond it waits for its turn, up to
    /// ``maxRateWait``; one that would wait longer is denied (not cached).
    public var maxRequestsPerSecond: Int
    /// How long a check may wait for its turn under ``maxRequestsPerSecond``: the sessions of a
    /// node that died reconnect to the others at once, and are let in at the rate instead of refused.
    public var maxRateWait: Duration

    public init(
        url: String,
        style: Style = .rfc7662,
        clientId: String? = nil,
        clientSecret: String? = nil,
        userIdClaims: [String] = ["user_id", "sub", "user_name"],
        cacheTTL: Duration = .seconds(60),
        negativeCacheTTL: Duration = .seconds(5),
        timeout: Duration = .seconds(3),
        maxCacheEntries: Int = 100_000,
        maxTokenBytes: Int = 8192,
        maxConcurrentRequests: Int = 256,
        maxRequestsPerSecond: Int = 500,
        maxRateWait: Duration = .seconds(5)
    ) {
        self.url = url
        self.style = style
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.userIdClaims = userIdClaims
        self.cacheTTL = cacheTTL
        self.negativeCacheTTL = negativeCacheTTL
        self.timeout = timeout
        self.maxCacheEntries = maxCacheEntries
        self.maxTokenBytes = maxTokenBytes
        self.maxConcurrentRequests = maxConcurrentRequests
        self.maxRequestsPerSecond = maxRequestsPerSecond
        self.maxRateWait = maxRateWait
    }
}

extension IntrospectionConfiguration: CustomStringConvertible {
    /// No client secret in logs.
    public var description: String {
        "IntrospectionConfiguration(url: \(url), style: \(style.rawValue), clientId: \(clientId ?? "none"), secret: \(clientSecret == nil ? "none" : "***"))"
    }
}
