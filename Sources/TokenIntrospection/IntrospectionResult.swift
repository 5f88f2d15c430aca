/// What the authorization server said of a token.
public enum IntrospectionResult: Sendable, Hashable {
    /// Active, belonging to `userId`; `expiresAt` in Unix seconds when the token has an `exp`.
    case active(userId: String, expiresAt: Int64?, scopes: Set<String>)
    /// Not active, or no user id claim, or the check failed; the reason is for debug logs.
    case denied(reason: String)

    public var isActive: Bool {
        if case .active = self { return true }
        return false
    }
}
