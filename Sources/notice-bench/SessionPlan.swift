import STOMP

/// What every session of one run says: where it connects, how it authenticates, what it
/// subscribes to. Shared by all sessions (one copy, not one per session).
final class SessionPlan: Sendable {
    /// Which server the sessions talk to.
    enum Target: String, Sendable {
        /// notice-service: Bearer token `bench-<run>-<user>`, `/notice/<user>/remind`.
        case notice
        /// RabbitMQ Web-STOMP: guest/guest, `/exchange/notice.deliver/user.<user>`.
        case webstomp
    }

    let target: Target
    let host: String
    let port: Int
    let path: String
    /// The `<run>` of the tokens `bench-<run>-<user>`.
    let run: String
    /// Every CONNECT carries this token (a warm introspection cache) instead of its own.
    let fixedToken: String?
    /// Whether sessions subscribe after CONNECTED (connect mode closes at CONNECTED instead).
    let subscribes: Bool
    /// Web-STOMP only: also subscribe to the broadcast routing key.
    let broadcast: Bool
    /// notice-service only: also subscribe to `/user/notice/events` (subscription id `events`):
    /// each session then gets the user's counts after its notices.
    let events: Bool
    /// First local address is 127.0.0.2; sessions rotate over this many (each has ~28k ports).
    let sourceAddresses: Int

    init(
        url: String,
        target: Target,
        run: String,
        fixedToken: String?,
        subscribes: Bool,
        broadcast: Bool,
        events: Bool = false,
        sourceAddresses: Int
    ) throws {
        guard url.hasPrefix("ws://") else { throw BenchError("only ws:// URLs: \(url)") }
        let rest = url.dropFirst(5)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        let parts = authority.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw BenchError("need host:port in \(url)") }
        self.host = String(parts[0])
        self.port = port
        self.path = path.isEmpty ? "/" : String(path)
        self.target = target
        self.run = run
        self.fixedToken = fixedToken
        self.subscribes = subscribes
        self.broadcast = broadcast
        self.events = events && target == .notice
        self.sourceAddresses = max(1, min(250, sourceAddresses))
    }

    /// The HTTP/1.1 upgrade request (the key is fixed: the bench does not check the accept hash).
    var handshake: [UInt8] {
        Array(
            ("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Protocol: v12.stomp\r\n\r\n").utf8
        )
    }

    func connectFrame(user: Int) -> [UInt8] {
        var headers: StompHeaders = ["accept-version": "1.2", "heart-beat": "0,0"]
        switch target {
        case .notice:
            headers.add("Authorization", "Bearer \(fixedToken ?? "bench-\(run)-\(user)")")
        case .webstomp:
            headers.add("host", "/")
            headers.add("login", "guest")
            headers.add("passcode", "guest")
        }
        return StompEncoder.encode(StompFrame(.connect, headers: headers), version: .v1_2)
    }

    /// SUBSCRIBE frames; the last one asks for the receipt that marks the session ready.
    func subscribeFrames(user: Int) -> [[UInt8]] {
        var destinations: [String]
        switch target {
        case .notice:
            destinations = ["/notice/\(user)/remind"]
        case .webstomp:
            destinations = ["/exchange/\(Self.webStompExchange)/user.\(user)"]
            if broadcast { destinations.append("/exchange/\(Self.webStompExchange)/broadcast") }
        }
        var frames: [[UInt8]] = []
        if events {
            let headers: StompHeaders = ["id": Self.eventsSubscription, "destination": "/user/notice/events"]
            frames.append(StompEncoder.encode(StompFrame(.subscribe, headers: headers), version: .v1_2))
        }
        return frames
            + destinations.enumerated().map { index, destination in
                var headers: StompHeaders = ["id": String(index), "destination": destination]
                if index == destinations.count - 1 { headers.add("receipt", "ready") }
                return StompEncoder.encode(StompFrame(.subscribe, headers: headers), version: .v1_2)
            }
    }

    /// The subscription id of the events destination (its MESSAGEs are counted apart).
    static let eventsSubscription = "events"

    /// The topic exchange Web-STOMP sessions subscribe to and the publisher sends to.
    static let webStompExchange = "notice.deliver"
}

/// A failure the bench reports and exits on.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
