/// The token of an `Authorization` header value (RFC 6750 §2.1), for STOMP CONNECT and the HTTP API alike.
public enum BearerToken {
    /// The token of `Bearer <token>` (scheme case-insensitive), or `nil` for any other value.
    public static func parse(_ authorization: String) -> String? {
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(where: { $0 == " " })
        return token.isEmpty ? nil : token
    }
}

extension Substring {
    func trimmingCharacters(where predicate: (Character) -> Bool) -> String {
        var slice = self
        while let first = slice.first, predicate(first) { slice = slice.dropFirst() }
        while let last = slice.last, predicate(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
