import RabbitMQ

/// The queues and exchanges of SPEC §1: the durable notice queue, the direct exchange
/// bound to it with routing key `notice`, and the dead-letter queue.
func noticeTopology(_ configuration: NoticeServiceConfiguration) -> AMQPTopology {
    AMQPTopology(
        queues: [.init(name: configuration.queue), .init(name: configuration.deadLetterQueue)],
        exchanges: [.init(name: configuration.exchange, type: "direct"), .init(name: configuration.eventsExchange, type: "topic")],
        bindings: [.init(queue: configuration.queue, exchange: configuration.exchange, routingKey: "notice")],
        consume: configuration.queue
    )
}
