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

    /// Parses `cx,cy`; an absent header is `.none`.
    public init(header: String?) throws(StompError) {
        guard let header else {
            self = .none
            return
        }
        let parts = header.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2,
            let outgoing = Int(parts[0].trimmingSpaces()), outgoing >= 0,
            let incoming = Int(parts[1].trimmingSpaces()), incoming >= 0
        else { throw .invalidHeartBeat }
        self.init(outgoing: outgoing, incoming: incoming)
    }

    public var description: String { "\(outgoing),\(incoming)" }

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
    public static func negotiate(client: HeartBeat, server: HeartBeat) -> Agreement {
        let serverSends = (server.outgoing == 0 || client.incoming == 0) ? 0 : max(server.outgoing, client.incoming)
        let clientSends = (client.outgoing == 0 || server.incoming == 0) ? 0 : max(client.outgoing, server.incoming)
        return Agreement(serverSends: serverSends, clientSends: clientSends)
    }
}
