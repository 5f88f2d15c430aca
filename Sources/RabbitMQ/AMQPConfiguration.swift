import Foundation

/// How to reach the broker and how to behave when it goes away.
public struct AMQPConfiguration: Sendable, Hashable {
    /// `amqp://user:password@host:port/vhost` (the vhost percent-encoded; `/` is `%2f`).
    public var url: String
    /// AMQP heartbeat asked of the broker, in seconds (0 disables).
    public var heartbeatSeconds: Int
    /// `basic.qos` prefetch count of the consumer channel.
    public var prefetch: UInt16
    /// First reconnect delay; doubled after each failure up to ``maxBackoff``.
    public var minBackoff: Duration
    public var maxBackoff: Duration
    /// The `connection_name` client property the management UI shows.
    public var connectionName: String

    public init(
        url: String = "amqp://guest:guest@127.0.0.1:5672/",
        heartbeatSeconds: Int = 30,
        prefetch: UInt16 = 256,
        minBackoff: Duration = .milliseconds(100),
        maxBackoff: Duration = .seconds(30),
        connectionName: String = "notice-service"
    ) {
        self.url = url
        self.heartbeatSeconds = heartbeatSeconds
        self.prefetch = prefetch
        self.minBackoff = minBackoff
        self.maxBackoff = maxBackoff
        self.connectionName = connectionName
    }
}

extension AMQPConfiguration: CustomStringConvertible, CustomDebugStringConvertible {
    /// The URL without its password, for logs.
    public var redactedURL: String {
        guard let schemeEnd = url.range(of: "://"), let at = url[schemeEnd.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[schemeEnd.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return url[..<colon] + ":***" + url[at...]
    }

    public var description: String { "AMQPConfiguration(url: \(redactedURL), prefetch: \(prefetch), heartbeat: \(heartbeatSeconds)s)" }
    public var debugDescription: String { description }
}

/// The queues, exchanges and bindings a connection declares each time it connects.
public struct AMQPTopology: Sendable, Hashable {
    /// A queue declaration.
    public struct Queue: Sendable, Hashable {
        public var name: String
        public var durable: Bool
        public var exclusive: Bool
        public var autoDelete: Bool

        public init(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false) {
            self.name = name
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
        }
    }

    /// An exchange declaration.
    public struct Exchange: Sendable, Hashable {
        public var name: String
        /// `direct`, `topic`, `fanout` or `headers`.
        public var type: String
        public var durable: Bool

        public init(name: String, type: String, durable: Bool = true) {
            self.name = name
            self.type = type
            self.durable = durable
        }
    }

    /// A queue bound to an exchange with a routing key.
    public struct Binding: Sendable, Hashable {
        public var queue: String
        public var exchange: String
        public var routingKey: String

        public init(queue: String, exchange: String, routingKey: String) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
        }
    }

    public var queues: [Queue]
    public var exchanges: [Exchange]
    public var bindings: [Binding]
    /// The queue to consume from, if any.
    public var consume: String?

    public init(queues: [Queue] = [], exchanges: [Exchange] = [], bindings: [Binding] = [], consume: String? = nil) {
        self.queues = queues
        self.exchanges = exchanges
        self.bindings = bindings
        self.consume = consume
    }
}
