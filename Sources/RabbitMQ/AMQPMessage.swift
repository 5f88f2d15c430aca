/// An AMQP field-table value (AMQP 0-9-1 §4.2.5.5, RabbitMQ's variant).
public indirect enum AMQPFieldValue: Sendable, Hashable {
    case bool(Bool)
    case int8(Int8)
    case uint8(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case float(Float)
    case double(Double)
    case decimal(scale: UInt8, value: UInt32)
    /// A long string (`S`); kept as bytes, since AMQP does not promise UTF-8.
    case string([UInt8])
    /// A byte array (`x`).
    case bytes([UInt8])
    case array([AMQPFieldValue])
    case timestamp(UInt64)
    case table(AMQPTable)
    case void

    /// A long-string value from text.
    public static func text(_ text: String) -> AMQPFieldValue { .string(Array(text.utf8)) }

    /// The value as text, when it is a string of valid UTF-8.
    public var textValue: String? {
        if case .string(let bytes) = self { return String(validating: bytes, as: UTF8.self) }
        return nil
    }
}

/// An AMQP field table, entries in wire order.
public struct AMQPTable: Sendable, Hashable {
    public var entries: [Entry]

    /// One key and value.
    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: AMQPFieldValue

        public init(key: String, value: AMQPFieldValue) {
            self.key = key
            self.value = value
        }
    }

    public init(_ entries: [Entry] = []) { self.entries = entries }

    /// The value of the first entry named `key`; setting replaces it or appends.
    public subscript(key: String) -> AMQPFieldValue? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
            }
        }
    }
}

/// The basic-class content properties of a message.
public struct AMQPProperties: Sendable, Hashable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: AMQPTable?
    /// 2 is persistent.
    public var deliveryMode: UInt8?
    public var priority: UInt8?
    public var correlationId: String?
    public var replyTo: String?
    public var expiration: String?
    public var messageId: String?
    public var timestamp: UInt64?
    public var type: String?
    public var userId: String?
    public var appId: String?

    public init(
        contentType: String? = nil,
        contentEncoding: String? = nil,
        headers: AMQPTable? = nil,
        deliveryMode: UInt8? = nil,
        priority: UInt8? = nil,
        correlationId: String? = nil,
        replyTo: String? = nil,
        expiration: String? = nil,
        messageId: String? = nil,
        timestamp: UInt64? = nil,
        type: String? = nil,
        userId: String? = nil,
        appId: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.type = type
        self.userId = userId
        self.appId = appId
    }

    /// Persistent JSON.
    public static let persistentJSON = AMQPProperties(contentType: "application/json", deliveryMode: 2)
}

/// A message body and its properties.
public struct AMQPMessage: Sendable, Hashable {
    public var body: [UInt8]
    public var properties: AMQPProperties

    public init(body: [UInt8], properties: AMQPProperties = .init()) {
        self.body = body
        self.properties = properties
    }
}

/// Identifies a delivery for ``RabbitMQConnection/settle(_:)``: its delivery tag on the
/// consumer channel of one connection (tags of an earlier connection are void).
public struct DeliveryTag: Sendable, Hashable, Comparable {
    public var connection: UInt64
    public var value: UInt64

    public init(connection: UInt64, value: UInt64) {
        self.connection = connection
        self.value = value
    }

    public static func < (lhs: DeliveryTag, rhs: DeliveryTag) -> Bool {
        (lhs.connection, lhs.value) < (rhs.connection, rhs.value)
    }
}

/// A message consumed from the queue.
public struct AMQPDelivery: Sendable, Hashable {
    public var tag: DeliveryTag
    /// The broker delivered it before (to this or another consumer) without an ack.
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var message: AMQPMessage

    public init(tag: DeliveryTag, redelivered: Bool, exchange: String, routingKey: String, message: AMQPMessage) {
        self.tag = tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.message = message
    }
}
