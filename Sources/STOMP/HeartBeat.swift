/// A `heart-beat` header value: the smallest interval, in milliseconds, at which a
/// side can send (`outgoing`) and wants to receive (`incoming`); 0 means never.
public struct HeartBeat: Sendable, Hashable, CustomStringConvertible {
    public var outgoing: Int
    public var incoming: Int

    public init(outgoing: Int, incoming: Int) {
        self.outgoing = outgoing
        self.incoming = incoming
    }

    /// No heart-beats either way (the value of an absent header).
    public static let none = HeartBeat(outgoing: 0, incoming: 0)

    /// The longest interval a header can ask for: one day. A client's larger value (any run of
    /// digits, even past `Int.max`) means the same, so arithmetic on an agreed interval never
    /// overflows.
    public static let maxInterval = 86_400_000

    /// Parses `cx,cy`; an absent header is `.none`. Values above ``maxInterval`` are read as it.
    public init(header: String?) throws(StompError) {
        guard let header else {
            self = .none
            return
        }
        let parts = header.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2,
            let outgoing = Self.interval(parts[0].trimmingSpaces()),
            let incoming = Self.interval(parts[1].trimmingSpaces())
        else { throw .invalidHeartBeat }
        self.init(outgoing: outgoing, incoming: incoming)
    }

    /// A run of ASCII digits as milliseconds, at most ``maxInterval``; `nil` for anything else.
    private static func interval(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        var value = 0
        for digit in text.utf8 {
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
            if value > maxInterval { return maxInterval }
        }
        return value
    }

    public var description: String { "\(outgoing),\(incoming)" }

    /// Both values within `0...maxInterval`.
    var bounded: HeartBeat {
        HeartBeat(outgoing: min(max(outgoing, 0), Self.maxInterval), incoming: min(max(incoming, 0), Self.maxInterval))
    }

    /// The intervals agreed between a client's CONNECT header and what the server offers
    /// (STOMP 1.2 §"Heart-beating").
    public struct Agreement: Sendable, Hashable {
        /// How often the server must send something, in ms; 0: never.
        public var serverSends: Int
        /// How often the client promised to send something, in ms; 0: never.
        public var clientSends: Int

        public init(serverSends: Int, clientSends: Int) {
            self.serverSends = serverSends
            self.clientSends = clientSends
        }
    }

    /// Negotiates `client` (from CONNECT) against `server` (what this server offers).
    /// Both sides' values are taken as at most ``maxInterval``.
    public static func negotiate(client: HeartBeat, server: HeartBeat) -> Agreement {
        let client = client.bounded
        let server = server.bounded
        let serverSends = (server.outgoing == 0 || client.incoming == 0) ? 0 : max(server.outgoing, client.incoming)
        let clientSends = (client.outgoing == 0 || server.incoming == 0) ? 0 : max(client.outgoing, server.incoming)
        return Agreement(serverSends: serverSends, clientSends: clientSends)
    }
}
