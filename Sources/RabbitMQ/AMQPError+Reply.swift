internal import CRabbitMQ

extension AMQPError {
    /// Throws the error an RPC reply of rabbitmq-c reports, prefixed with `operation`.
    static func check(_ reply: amqp_rpc_reply_t, _ operation: String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw AMQPError.library("\(operation): \(String(cString: amqp_error_string2(reply.library_error)))")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case notice_amqp_connection_close_method():
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw AMQPError.brokerClosed("\(operation): \(close.reply_code) \(String(close.reply_text))")
            case notice_amqp_channel_close_method():
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw AMQPError.brokerClosed("\(operation): \(close.reply_code) \(String(close.reply_text))")
            default:
                throw AMQPError.brokerClosed("\(operation): unexpected method \(reply.reply.id)")
            }
        default:
            throw AMQPError.library("\(operation): no reply")
        }
    }

    /// The error of a rabbitmq-c status other than `AMQP_STATUS_OK`, prefixed with `operation`.
    static func library(_ operation: String, status: Int32) -> AMQPError {
        .library("\(operation): \(String(cString: amqp_error_string2(status)))")
    }
}
