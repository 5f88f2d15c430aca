/// What a connection asks of the broker on each connect, as steps for the worker to run in
/// order, and the bindings made with `bind` since it started.
///
/// Channel 1 consumes and carries the declarations; channel 2 publishes in confirm mode.
struct ConnectionSetup: Sendable {
    /// One broker call and the name its errors carry.
    struct Step: Sendable, Hashable {
        enum Action: Sendable, Hashable {
            case openChannel
            case confirmSelect
            case declareExchange(AMQPTopology.Exchange)
            case declareQueue(AMQPTopology.Queue)
            case bind(AMQPTopology.Binding)
            case unbind(AMQPTopology.Binding)
            case qos(prefetch: UInt16)
            case consume(queue: String)
            case cancel(consumerTag: [UInt8])
        }

        var channel: UInt16
        var action: Action
        /// Prefixes the error when the call fails.
        var operation: String
    }

    /// What login sends: client properties (`connection.start-ok`), tuning (`connection.tune-ok`), vhost (`connection.open`).
    struct Login: Sendable, Hashable {
        var vhost: String
        var frameMax: Int32
        var heartbeatSeconds: Int32
        var clientProperties: AMQPTable
    }

    static let consumeChannel: UInt16 = 1
    static let publishChannel: UInt16 = 2
    /// AMQP's short string, the limit of exchange, queue and routing key names.
    static let maxNameBytes = 255

    let configuration: AMQPConfiguration
    let topology: AMQPTopology
    /// Bindings made with `bind` and not unbound: declared again on every connect.
    private(set) var dynamicBindings: [AMQPTopology.Binding] = []

    init(configuration: AMQPConfiguration, topology: AMQPTopology) {
        self.configuration = configuration
        self.topology = topology
    }

    /// The login for the vhost the URL names (rabbitmq-c reads "amqp://host/" as the empty
    /// vhost; RabbitMQ's default is "/").
    func login(vhost: String?) -> Login {
        Login(
            vhost: vhost.flatMap { $0.isEmpty ? nil : $0 } ?? "/",
            frameMax: 131_072,
            // The protocol's field is 16 bits: a configuration value outside it is clamped, never a trap.
            heartbeatSeconds: Int32(min(max(configuration.heartbeatSeconds, 0), Int(UInt16.max))),
            clientProperties: AMQPTable([.init(key: "connection_name", value: .text(configuration.connectionName))])
        )
    }

    /// After login: the consumer channel with the topology and the dynamic bindings on it,
    /// then the publishing channel in confirm mode.
    var channelSteps: [Step] {
        let consume = Self.consumeChannel
        var steps = [Step(channel: consume, action: .openChannel, operation: "channel.open")]
        steps += topology.exchanges.map { Step(channel: consume, action: .declareExchange($0), operation: "exchange.declare \($0.name)") }
        steps += topology.queues.map { Step(channel: consume, action: .declareQueue($0), operation: "queue.declare \($0.name)") }
        steps += (topology.bindings + dynamicBindings).map { Step(channel: consume, action: .bind($0), operation: "queue.bind \($0.queue)") }
        steps.append(Step(channel: Self.publishChannel, action: .openChannel, operation: "channel.open"))
        steps.append(Step(channel: Self.publishChannel, action: .confirmSelect, operation: "confirm.select"))
        return steps
    }

    /// Then, if the topology consumes and `stopConsuming` has not been called: the prefetch
    /// and the consumer (without auto-ack).
    func consumeSteps(stopped: Bool) -> [Step] {
        guard let queue = topology.consume, !stopped else { return [] }
        return [
            Step(channel: Self.consumeChannel, action: .qos(prefetch: configuration.prefetch), operation: "basic.qos"),
            Step(channel: Self.consumeChannel, action: .consume(queue: queue), operation: "basic.consume"),
        ]
    }

    /// Cancels the consumer (`stopConsuming`).
    static func cancel(consumerTag: [UInt8]) -> Step {
        Step(channel: consumeChannel, action: .cancel(consumerTag: consumerTag), operation: "basic.cancel")
    }

    /// Records a `bind` or `unbind` command and returns the step that carries it out now, if
    /// connected; a name too long fails it and records nothing.
    mutating func bindCommand(_ binding: AMQPTopology.Binding, unbind: Bool) -> Result<Step, AMQPError> {
        if let error = Self.tooLong(("queue", binding.queue), ("exchange", binding.exchange), ("routing key", binding.routingKey)) {
            return .failure(error)
        }
        dynamicBindings.removeAll { $0 == binding }
        if !unbind { dynamicBindings.append(binding) }
        return .success(
            unbind
                ? Step(channel: Self.consumeChannel, action: .unbind(binding), operation: "queue.unbind")
                : Step(channel: Self.consumeChannel, action: .bind(binding), operation: "queue.bind")
        )
    }

    /// The broker refused `binding`: not declared again on every connect, where it would fail
    /// each time and never let the connection stay up.
    mutating func refused(_ binding: AMQPTopology.Binding) {
        dynamicBindings.removeAll { $0 == binding }
    }

    /// The error a publish fails with before anything is sent, if a name is too long.
    static func checkPublish(exchange: String, routingKey: String) -> AMQPError? {
        tooLong(("exchange", exchange), ("routing key", routingKey))
    }

    /// ``AMQPError/tooLong(_:)`` for the first name over a short string, labelled as given.
    static func tooLong(_ names: (label: String, name: String)...) -> AMQPError? {
        names.first { $0.name.utf8.count > maxNameBytes }.map { AMQPError.tooLong($0.label) }
    }
}
