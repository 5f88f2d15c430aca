import NoticeCore
import STOMP

/// Client frames: CONNECT and the frames of a connected session.
extension StompSession {
    mutating func connect(_ frame: StompFrame) -> [Action] {
        guard let version = StompVersion.negotiate(acceptVersion: frame.headers["accept-version"]) else {
            var headers: StompHeaders = ["message": "unsupported version", "version": "1.0,1.1,1.2"]
            headers.add("content-type", "text/plain")
            state = .closed
            return [.send(StompFrame(.error, headers: headers, body: Array("supported versions: 1.0, 1.1, 1.2".utf8)).withContentLength()), .close]
        }
        self.version = version
        let clientHeartBeat: HeartBeat
        do {
            clientHeartBeat = try HeartBeat(header: frame.headers["heart-beat"])
        } catch {
            return fail("invalid heart-beat", detail: "heart-beat must be two non-negative integers", frame: frame)
        }
        let offer = HeartBeat(outgoing: configuration.heartBeatMillis, incoming: configuration.heartBeatMillis)
        heartBeat = HeartBeat.negotiate(client: clientHeartBeat, server: offer)
        state = .authenticating
        return [.authenticate(token: Self.bearerToken(frame.headers) ?? handshakeToken)]
    }

    /// The token of an `Authorization: Bearer <token>` header, if any.
    static func bearerToken(_ headers: StompHeaders) -> String? {
        (headers["Authorization"] ?? headers["authorization"]).flatMap(BearerToken.parse)
    }

    mutating func connected(_ frame: StompFrame) -> [Action] {
        var actions: [Action]
        switch frame.command {
        case .connect, .stomp:
            return fail("already connected", detail: "CONNECT sent twice", frame: frame)
        case .subscribe:
            actions = subscribe(frame)
        case .unsubscribe:
            guard let id = frame.headers["id"] ?? (version == .v1_0 ? frame.headers["destination"] : nil) else {
                return fail("missing header", detail: "UNSUBSCRIBE needs an id header", frame: frame)
            }
            subscriptions.removeAll { $0.id == id }
            unacknowledged.removeAll { $0.subscriptionId == id }
            actions = []
        case .send:
            actions = send(frame)
        case .disconnect:
            state = .closed
            if let receipt = frame.headers["receipt"] {
                return [.send(StompFrame(.receipt, headers: ["receipt-id": receipt])), .close]
            }
            return [.close]
        case .ack, .nack:
            guard let messageId = frame.headers[version == .v1_2 ? "id" : "message-id"] else {
                return fail(
                    "missing header",
                    detail: "\(frame.command.rawValue) needs an \(version == .v1_2 ? "id" : "message-id") header",
                    frame: frame
                )
            }
            let settled = settle(messageId)
            actions = frame.command == .ack && !settled.isEmpty ? [.markDelivered(settled)] : []
        case .begin, .commit, .abort:
            // Transactions are accepted as no-ops: there is nothing to send in one.
            actions = []
        case .connected, .message, .receipt, .error:
            return fail("unexpected frame", detail: "\(frame.command.rawValue) is a server frame", frame: frame)
        }
        if state == .connected, let receipt = frame.headers["receipt"] {
            // A SUBSCRIBE's receipt comes before its replay: the client knows it is subscribed,
            // then receives what was stored for it, then live notices.
            // So does a counts message on an events subscription.
            let replay = actions.firstIndex {
                switch $0 {
                case .replay, .sendCounts: true
                default: false
                }
            }
            actions.insert(.send(StompFrame(.receipt, headers: ["receipt-id": receipt])), at: replay ?? actions.endIndex)
        }
        return actions
    }

    private mutating func subscribe(_ frame: StompFrame) -> [Action] {
        guard let destination = frame.headers["destination"] else {
            return fail("missing header", detail: "SUBSCRIBE needs a destination header", frame: frame)
        }
        guard let id = frame.headers["id"] ?? (version == .v1_0 ? destination : nil) else {
            return fail("missing header", detail: "SUBSCRIBE needs an id header", frame: frame)
        }
        guard !subscriptions.contains(where: { $0.id == id }) else {
            return fail("duplicate subscription", detail: "subscription id already in use", frame: frame)
        }
        guard subscriptions.count < configuration.maxSubscriptions else {
            return fail("too many subscriptions", detail: "at most \(configuration.maxSubscriptions) per connection", frame: frame)
        }
        guard let ackMode = AckMode(rawValue: frame.headers["ack"] ?? "auto") else {
            return fail("invalid header", detail: "ack must be auto, client or client-individual", frame: frame)
        }
        guard let feed = feed(for: destination) else {
            return fail("forbidden", detail: "you may not subscribe to that destination", frame: frame)
        }
        let replay = frame.headers["x-replay"] != "none"
        subscriptions.append(Subscription(id: id, destination: destination, feed: feed, ackMode: ackMode, replay: replay))
        switch feed {
        case .remind:
            // The user's remind feed replays their notices and announcements; `/topic/notice`
            // (the legacy broadcast topic) replays nothing.
            return replay ? [.replay(subscriptionId: id)] : []
        case .broadcast:
            return []
        case .events:
            // The counts first: every event after them is a change to what they say.
            return [.sendCounts(subscriptionId: id)]
        }
    }

    /// Takes an ACKed or NACKed message off the unacknowledged list, with the earlier ones of
    /// its subscription if that is in `client` mode (cumulative), and returns the user's own
    /// notices among them. An unknown id (already settled, or forgotten) settles nothing.
    private mutating func settle(_ messageId: String) -> [NoticeKey] {
        guard let index = unacknowledged.firstIndex(where: { $0.messageId == messageId }) else { return [] }
        let target = unacknowledged[index]
        let cumulative = subscriptions.first { $0.id == target.subscriptionId }?.ackMode == .client
        var settled: [NoticeKey] = []
        var kept: [Unacknowledged] = []
        kept.reserveCapacity(unacknowledged.count)
        for (position, entry) in unacknowledged.enumerated() {
            let takes = position == index || (cumulative && position < index && entry.subscriptionId == target.subscriptionId)
            if takes {
                settled.append(entry.key)
            } else {
                kept.append(entry)
            }
        }
        unacknowledged = kept
        return settled
    }

    /// The feed a destination names, or `nil` when this user may not subscribe to it.
    /// Destinations are compared exactly: no decoding, no case folding, no path resolution.
    func feed(for destination: String) -> Feed? {
        guard let userId = principal?.userId else { return nil }
        switch destination {
        case "/notice/remind", "/user/notice/remind", "/notice/\(userId)/remind":
            return .remind
        case "/topic/notice":
            return .broadcast
        case "/user/notice/events":
            return .events
        default:
            return nil
        }
    }

    private mutating func send(_ frame: StompFrame) -> [Action] {
        switch frame.headers["destination"] {
        case "/app/notices/read":
            guard let object = Self.jsonObject(frame), let idValue = object["id"], let id = try? NoticeValidator.parseId(idValue) else {
                return fail("invalid body", detail: "expected {\"id\":\"<notice id>\"}", frame: frame)
            }
            return [.changeInbox(InboxCommand(action: .read, selection: .ids([id])), receipt: frame.headers["receipt"])]
        case "/app/session/token":
            guard let token = Self.bearerToken(frame.headers) else {
                return fail("invalid header", detail: "SEND /app/session/token needs Authorization: Bearer <token>", frame: frame)
            }
            return [.refreshToken(token)]
        case "/app/notices/state":
            guard let object = Self.jsonObject(frame) else { return fail("invalid body", detail: "expected a JSON object", frame: frame) }
            do {
                return [.changeInbox(try InboxCommand.parse(.object(object)), receipt: frame.headers["receipt"])]
            } catch {
                return fail("invalid body", detail: error.description, frame: frame)
            }
        default:
            // The legacy frontend's liveness probe (`send('test')`) and any other SEND: accepted, ignored.
            return []
        }
    }

    /// The frame's body as a JSON object, if it is one.
    private static func jsonObject(_ frame: StompFrame) -> JSONObject? {
        guard let text = frame.bodyText, case .object(let object)? = try? JSONParser.parse(Array(text.utf8)) else { return nil }
        return object
    }
}
