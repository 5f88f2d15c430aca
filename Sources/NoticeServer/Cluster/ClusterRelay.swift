import Crypto
import Logging
import NoticeCore
import RabbitMQ
import ServiceLifecycle
import StompServer
import Synchronization

/// Delivery across nodes through RabbitMQ (SPEC §8).
///
/// The node that stores a notice pushes it to its own sessions and publishes it to the topic
/// exchange (`notice.deliver`) with routing key `user.<uid>` or `broadcast`. Every node owns
/// one exclusive queue, bound to `broadcast` and to `user.<uid>` for exactly the users it holds
/// sessions of, and hands what arrives there to its own hub — skipping what it published itself,
/// which its sessions already have. So each session gets each notice once, wherever it was
/// consumed.
///
/// A user's binding is in place before their CONNECTED is sent (``acquire(_:)``), so every
/// notice stored after it reaches them live, and everything stored before is in the replay of
/// their SUBSCRIBE. Bindings are declared again after a reconnect of the relay's connection.
final class ClusterRelay: Service, UserPresence, Sendable, CustomStringConvertible {
    static let originHeader = "x-notice-origin"
    static let noticeIdHeader = "x-notice-id"
    static let recipientHeader = "x-notice-recipient"
    /// `inbox` on an inbox event (``PushNotice/Kind/inbox``), `disconnect` on an order to end
    /// the recipient's sessions (the admin API); absent on a notice.
    static let kindHeader = "x-notice-kind"

    let exchange: String
    let nodeId: String
    let queue: String
    private let connection: RabbitMQConnection
    private let hub: DeliveryHub
    private let logger: Logger
    private let state = Mutex(State())
    var description: String { "ClusterRelay(exchange: \(exchange), queue: \(queue))" }

    private struct State {
        /// Sessions per user on this node.
        var sessions: [String: Int] = [:]
        /// The last bind/unbind of each user, so that they run in order and a second session
        /// can wait for the bind the first one started.
        var pending: [String: (generation: UInt64, task: Task<Void, Never>)] = [:]
        var generation: UInt64 = 0
    }

    init(amqp: AMQPConfiguration, exchange: String, nodeId: String, hub: DeliveryHub, logger: Logger) {
        self.exchange = exchange
        self.nodeId = nodeId
        self.queue = "\(exchange).\(nodeId)"
        self.hub = hub
        self.logger = logger
        var amqp = amqp
        amqp.connectionName += " relay"
        connection = RabbitMQConnection(
            configuration: amqp,
            topology: AMQPTopology(
                queues: [.init(name: queue, durable: false, exclusive: true, autoDelete: true)],
                exchanges: [.init(name: exchange, type: "topic")],
                bindings: [.init(queue: queue, exchange: exchange, routingKey: "broadcast")],
                consume: queue
            ),
            logger: logger
        )
    }

    /// The routing key of a user's notices: `user.<uid>`, with the characters that are special
    /// in topic routing (`.`, `*`, `#`), `%` and `~` percent-encoded, so a user id is one word
    /// and never a wildcard. A key that would be longer than AMQP's 255 bytes (a user id may
    /// have 128 characters of up to 4 bytes each) is `user.~<SHA-256 of the id, hex>` instead:
    /// the same on every node, and no escaped id starts with `~`.
    static func routingKey(forUser userId: String) -> String {
        var key = "user."
        for character in userId.unicodeScalars {
            switch character {
            case ".": key += "%2E"
            case "*": key += "%2A"
            case "#": key += "%23"
            case "%": key += "%25"
            case "~": key += "%7E"
            default: key.unicodeScalars.append(character)
            }
        }
        guard key.utf8.count > 255 else { return key }
        return "user.~" + SHA256.hash(data: Array(userId.utf8)).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    // MARK: Sessions

    /// A session of `userId` opened on this node: binds `user.<uid>` on the first one and
    /// returns once the binding is in place (or at once while the broker is unreachable: it is
    /// then applied on reconnect).
    func acquire(_ userId: String) async {
        let wait: Task<Void, Never>? = state.withLock { state in
            state.sessions[userId, default: 0] += 1
            guard state.sessions[userId] == 1 else { return state.pending[userId]?.task }
            return schedule(userId, bind: true, in: &state)
        }
        await wait?.value
    }

    /// A session of `userId` closed: unbinds after the last one.
    func release(_ userId: String) {
        state.withLock { state in
            guard let count = state.sessions[userId] else { return }
            if count > 1 {
                state.sessions[userId] = count - 1
                return
            }
            state.sessions[userId] = nil
            _ = schedule(userId, bind: false, in: &state)
        }
    }

    private func schedule(_ userId: String, bind: Bool, in state: inout State) -> Task<Void, Never> {
        let previous = state.pending[userId]?.task
        state.generation += 1
        let generation = state.generation
        let routingKey = Self.routingKey(forUser: userId)
        let task = Task { [connection, queue, exchange, logger] in
            await previous?.value
            do {
                if bind {
                    try await connection.bind(queue: queue, exchange: exchange, routingKey: routingKey)
                } else {
                    try await connection.unbind(queue: queue, exchange: exchange, routingKey: routingKey)
                }
            } catch {
                // The connection is being re-established; it declares the remembered bindings.
                logger.debug("relay binding deferred", metadata: ["user.id": "\(userId)", "error": "\(error)"])
            }
            self.state.withLock { state in
                if state.pending[userId]?.generation == generation { state.pending[userId] = nil }
            }
        }
        state.pending[userId] = (generation, task)
        return task
    }

    // MARK: Out

    /// Publishes stored notices for the other nodes, in order, without waiting for the broker.
    func forward(_ notices: [PushNotice]) {
        for notice in notices {
            var headers = AMQPTable([
                .init(key: Self.originHeader, value: .text(nodeId)),
                .init(key: Self.noticeIdHeader, value: .text(String(notice.key.noticeId))),
            ])
            if let recipient = notice.key.recipient { headers.entries.append(.init(key: Self.recipientHeader, value: .text(recipient))) }
            if notice.kind == .inbox { headers.entries.append(.init(key: Self.kindHeader, value: .text("inbox"))) }
            let message = AMQPMessage(body: Array(notice.payload.utf8), properties: AMQPProperties(contentType: "application/json", headers: headers))
            let routingKey = notice.key.recipient.map(Self.routingKey(forUser:)) ?? "broadcast"
            connection.publish(message, exchange: exchange, routingKey: routingKey) { [logger] result in
                if case .failure(let error) = result {
                    // Its users on other nodes get it by replay on their next SUBSCRIBE.
                    logger.warning(
                        "could not forward a notice to other nodes",
                        metadata: ["notice.id": "\(notice.key.noticeId)", "error": "\(error)"]
                    )
                }
            }
        }
    }

    /// Asks the other nodes to end `userId`'s sessions there (this node ends its own).
    func forwardDisconnect(_ userId: String) {
        let headers = AMQPTable([
            .init(key: Self.originHeader, value: .text(nodeId)),
            .init(key: Self.noticeIdHeader, value: .text("0")),
            .init(key: Self.recipientHeader, value: .text(userId)),
            .init(key: Self.kindHeader, value: .text("disconnect")),
        ])
        connection.publish(
            AMQPMessage(body: [], properties: AMQPProperties(headers: headers)),
            exchange: exchange,
            routingKey: Self.routingKey(forUser: userId)
        ) {
            [logger] result in
            if case .failure(let error) = result {
                logger.warning("could not ask other nodes to end a user's sessions", metadata: ["user.id": "\(userId)", "error": "\(error)"])
            }
        }
    }

    // MARK: In

    /// A disconnect order for a user (``forwardDisconnect(_:)``) from another node; `nil` otherwise.
    func disconnect(from delivery: AMQPDelivery) -> String? {
        let headers = delivery.message.properties.headers
        guard headers?[Self.originHeader]?.textValue != nodeId, headers?[Self.kindHeader]?.textValue == "disconnect" else { return nil }
        return headers?[Self.recipientHeader]?.textValue
    }

    /// Decodes a forwarded notice or inbox event; `nil` for one of this node's own or one that
    /// is malformed (of a kind this node does not know). An inbox event without a recipient is
    /// for everyone (an announcement's).
    func notice(from delivery: AMQPDelivery) -> PushNotice? {
        let headers = delivery.message.properties.headers
        guard headers?[Self.originHeader]?.textValue != nodeId,
            let idText = headers?[Self.noticeIdHeader]?.textValue, let noticeId = Int64(idText)
        else { return nil }
        let recipient = headers?[Self.recipientHeader]?.textValue
        let kind: PushNotice.Kind
        switch headers?[Self.kindHeader]?.textValue {
        case nil: kind = .notice
        case "inbox": kind = .inbox
        default: return nil
        }
        return PushNotice(
            key: NoticeKey(noticeId: noticeId, recipient: recipient),
            payload: String(decoding: delivery.message.body, as: UTF8.self),
            kind: kind
        )
    }

    func run() async throws {
        connection.start()
        await withGracefulShutdownHandler {
            for await batch in connection.deliveries {
                hub.publish(batch.compactMap(notice(from:)))
                for userId in batch.compactMap(disconnect(from:)) { Self.endSessions(of: userId, on: hub) }
                connection.settle(batch.map(\.tag))
            }
        } onGracefulShutdown: { [connection] in
            Task { await connection.stopConsuming() }
        }
        await connection.shutdown()
    }

    /// Ends a user's sessions on this node (the admin API), with the ERROR every node sends.
    @discardableResult
    static func endSessions(of userId: String, on hub: DeliveryHub) -> Int {
        hub.close(userId: userId, message: "disconnected", detail: "an administrator ended this session")
    }

    /// Whether the relay's connection is up (readiness).
    var isConnected: Bool { connection.isConnected }
    var lastError: String? { connection.lastError }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
