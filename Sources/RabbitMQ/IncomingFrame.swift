internal import CRabbitMQ

/// A frame from the broker, read out of rabbitmq-c's decoded form into Swift values.
enum IncomingFrame: Sendable, Hashable {
    case deliver(tag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
    case returned
    case ack(tag: UInt64, multiple: Bool)
    case nack(tag: UInt64, multiple: Bool)
    case consumerCancelled
    case channelClosed(channel: UInt16, code: UInt16, text: String)
    case connectionClosed(code: UInt16, text: String)
    case blocked
    case unblocked
    case header(AMQPProperties, bodySize: UInt64)
    case body([UInt8])
    /// Anything else (heartbeats, methods this client does not act on).
    case other

    init(_ frame: amqp_frame_t) {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            self.init(method: frame.payload.method, channel: frame.channel)
        case AMQP_FRAME_HEADER:
            let header = frame.payload.properties
            let properties = AMQPProperties(header.decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
            self = .header(properties, bodySize: header.body_size)
        case AMQP_FRAME_BODY:
            self = .body([UInt8](frame.payload.body_fragment))
        default:
            self = .other
        }
    }

    private init(method: amqp_method_t, channel: amqp_channel_t) {
        func decoded<Method>(_: Method.Type) -> Method { method.decoded.assumingMemoryBound(to: Method.self).pointee }
        switch method.id {
        case notice_amqp_basic_deliver_method():
            let deliver = decoded(amqp_basic_deliver_t.self)
            self = .deliver(
                tag: deliver.delivery_tag,
                redelivered: deliver.redelivered != 0,
                exchange: String(deliver.exchange),
                routingKey: String(deliver.routing_key)
            )
        case notice_amqp_basic_return_method():
            self = .returned
        case notice_amqp_basic_ack_method():
            let ack = decoded(amqp_basic_ack_t.self)
            self = .ack(tag: ack.delivery_tag, multiple: ack.multiple != 0)
        case notice_amqp_basic_nack_method():
            let nack = decoded(amqp_basic_nack_t.self)
            self = .nack(tag: nack.delivery_tag, multiple: nack.multiple != 0)
        case notice_amqp_basic_cancel_method():
            self = .consumerCancelled
        case notice_amqp_channel_close_method():
            let close = decoded(amqp_channel_close_t.self)
            self = .channelClosed(channel: channel, code: close.reply_code, text: String(close.reply_text))
        case notice_amqp_connection_close_method():
            let close = decoded(amqp_connection_close_t.self)
            self = .connectionClosed(code: close.reply_code, text: String(close.reply_text))
        case notice_amqp_connection_blocked_method():
            self = .blocked
        case notice_amqp_connection_unblocked_method():
            self = .unblocked
        default:
            self = .other
        }
    }
}
