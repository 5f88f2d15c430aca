/// A STOMP protocol version this implementation speaks.
public enum StompVersion: String, Sendable, Hashable, Comparable, CaseIterable {
    case v1_0 = "1.0"
    case v1_1 = "1.1"
    case v1_2 = "1.2"

    /// The highest version both sides accept, from a CONNECT `accept-version` header.
    ///
    /// A CONNECT without the header is a STOMP 1.0 client. `nil` means no common version.
    public static func negotiate(acceptVersion: String?) -> StompVersion? {
        guard let acceptVersion else { return .v1_0 }
        let offered = acceptVersion.split(separator: ",").compactMap {
            StompVersion(rawValue: $0.trimmingSpaces())
        }
        return offered.max()
    }

    public static func < (lhs: StompVersion, rhs: StompVersion) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var slice = self[...]
        while slice.first == " " { slice = slice.dropFirst() }
        while slice.last == " " { slice = slice.dropLast() }
        return String(slice)
    }
}
