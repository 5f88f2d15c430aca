/// Builds the consumer's deliveries from their frames: `basic.deliver`, one content
/// header, then body frames until the header's body size is reached.
///
/// Frames out of that order are ignored, as is the content of a `basic.return` (up to the
/// next `basic.deliver`). A new `basic.deliver` drops a delivery still being assembled.
struct DeliveryAssembler: Sendable {
    private struct Partial {
        var tag: UInt64
        var redelivered: Bool
        var exchange: String
        var routingKey: String
        var properties = AMQPProperties()
        var bodySize = 0
        var body: [UInt8] = []
        var headerSeen = false
    }

    /// The most buffer reserved ahead of a body, whatever size its header declares.
    static let maxReservation = 1 << 20

    /// The connection whose delivery tags these are.
    let connection: UInt64
    private var partial: Partial?
    private var skippingContent = false
    private var completed: [AMQPDelivery] = []

    init(connection: UInt64) {
        self.connection = connection
    }

    /// Whether a delivery has started and is not complete yet.
    var isAssembling: Bool { partial != nil }

    /// The declared body size as a length, and the capacity reserved for it.
    static func bounds(ofDeclaredSize size: UInt64) -> (size: Int, reservation: Int) {
        // The size is the broker's word, a 64-bit number: bounded before it sizes anything.
        let clamped = Int(clamping: size)
        return (clamped, min(clamped, maxReservation))
    }

    /// A `basic.deliver` method frame: a new delivery starts.
    mutating func deliver(tag: UInt64, redelivered: Bool, exchange: String, routingKey: String) {
        partial = Partial(tag: tag, redelivered: redelivered, exchange: exchange, routingKey: routingKey)
        skippingContent = false
    }

    /// A `basic.return` method frame: its content is not a delivery.
    mutating func returned() {
        skippingContent = true
    }

    /// A content header frame.
    mutating func header(_ properties: AMQPProperties, bodySize: UInt64) {
        guard !skippingContent, var delivery = partial, !delivery.headerSeen else { return }
        let bounds = Self.bounds(ofDeclaredSize: bodySize)
        delivery.properties = properties
        delivery.bodySize = bounds.size
        delivery.headerSeen = true
        delivery.body.reserveCapacity(bounds.reservation)
        partial = delivery
        if delivery.bodySize == 0 { complete() }
    }

    /// A body frame. The delivery is complete once its body has at least the declared size
    /// (a fragment past it is kept whole).
    mutating func body(_ fragment: [UInt8]) {
        guard !skippingContent, partial?.headerSeen == true else { return }
        partial!.body.append(contentsOf: fragment)
        if partial!.body.count >= partial!.bodySize { complete() }
    }

    /// The deliveries completed since the last call, in order.
    mutating func takeCompleted() -> [AMQPDelivery] {
        defer { completed = [] }
        return completed
    }

    /// Forgets the delivery in progress and the completed ones not taken.
    mutating func discard() {
        partial = nil
        skippingContent = false
        completed = []
    }

    private mutating func complete() {
        guard let delivery = partial else { return }
        partial = nil
        completed.append(
            AMQPDelivery(
                tag: DeliveryTag(connection: connection, value: delivery.tag),
                redelivered: delivery.redelivered,
                exchange: delivery.exchange,
                routingKey: delivery.routingKey,
                message: AMQPMessage(body: delivery.body, properties: delivery.properties)
            )
        )
    }
}
