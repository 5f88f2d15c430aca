import Testing

@testable import RabbitMQ

@Suite struct ConnectionSetupTests {
    typealias Step = ConnectionSetup.Step

    let topology = AMQPTopology(
        queues: [.init(name: "notices", durable: true), .init(name: "dead", durable: false, exclusive: true, autoDelete: true)],
        exchanges: [.init(name: "notice.topic", type: "topic")],
        bindings: [.init(queue: "notices", exchange: "notice.topic", routingKey: "user.*")],
        consume: "notices"
    )

    func setup(_ topology: AMQPTopology? = nil) -> ConnectionSetup {
        ConnectionSetup(
            configuration: AMQPConfiguration(heartbeatSeconds: 15, prefetch: 64, connectionName: "node-a"),
            topology: topology ?? self.topology
        )
    }

    @Test func loginUsesTheURLsVhostOrRabbitMQsDefault() {
        let setup = setup()
        #expect(setup.login(vhost: nil).vhost == "/")
        #expect(setup.login(vhost: "").vhost == "/")
        #expect(setup.login(vhost: "/").vhost == "/")
        #expect(setup.login(vhost: "notices").vhost == "notices")
        let login = setup.login(vhost: nil)
        #expect(login.heartbeatSeconds == 15)
        #expect(login.frameMax == 131_072)
        #expect(login.clientProperties["connection_name"]?.textValue == "node-a")
    }

    @Test(arguments: [(Int.min, 0), (-1, 0), (0, 0), (65_535, 65_535), (65_536, 65_535), (Int.max, 65_535)] as [(Int, Int32)])
    func aHeartbeatOutsideTheProtocolsSixteenBitsIsClampedNotATrap(configured: Int, asked: Int32) {
        let setup = ConnectionSetup(configuration: AMQPConfiguration(heartbeatSeconds: configured), topology: topology)
        #expect(setup.login(vhost: nil).heartbeatSeconds == asked)
    }

    @Test func channelStepsDeclareTheTopologyThenTheBindingsThenOpenThePublisher() {
        var setup = setup()
        _ = setup.bindCommand(.init(queue: "notices", exchange: "amq.direct", routingKey: "user.7"), unbind: false)
        #expect(
            setup.channelSteps == [
                Step(channel: 1, action: .openChannel, operation: "channel.open"),
                Step(channel: 1, action: .declareExchange(topology.exchanges[0]), operation: "exchange.declare notice.topic"),
                Step(channel: 1, action: .declareQueue(topology.queues[0]), operation: "queue.declare notices"),
                Step(channel: 1, action: .declareQueue(topology.queues[1]), operation: "queue.declare dead"),
                Step(channel: 1, action: .bind(topology.bindings[0]), operation: "queue.bind notices"),
                Step(
                    channel: 1,
                    action: .bind(.init(queue: "notices", exchange: "amq.direct", routingKey: "user.7")),
                    operation: "queue.bind notices"
                ),
                Step(channel: 2, action: .openChannel, operation: "channel.open"),
                Step(channel: 2, action: .confirmSelect, operation: "confirm.select"),
            ]
        )
    }

    @Test func anEmptyTopologyOnlyOpensTheChannels() {
        let setup = setup(AMQPTopology())
        #expect(setup.channelSteps.map(\.action) == [.openChannel, .openChannel, .confirmSelect])
        #expect(setup.channelSteps.map(\.channel) == [1, 2, 2])
        #expect(setup.consumeSteps(stopped: false) == [])
    }

    @Test func consumingSetsThePrefetchThenStartsTheConsumerUnlessStopped() {
        let setup = setup()
        #expect(
            setup.consumeSteps(stopped: false) == [
                Step(channel: 1, action: .qos(prefetch: 64), operation: "basic.qos"),
                Step(channel: 1, action: .consume(queue: "notices"), operation: "basic.consume"),
            ]
        )
        #expect(setup.consumeSteps(stopped: true) == [])
        #expect(ConnectionSetup.cancel(consumerTag: [1, 2]) == Step(channel: 1, action: .cancel(consumerTag: [1, 2]), operation: "basic.cancel"))
    }

    @Test func bindingsAreRememberedOnceInTheOrderLastBoundAndForgottenOnUnbind() {
        var setup = setup()
        let first = AMQPTopology.Binding(queue: "notices", exchange: "amq.topic", routingKey: "user.1")
        let second = AMQPTopology.Binding(queue: "notices", exchange: "amq.topic", routingKey: "user.2")
        #expect(setup.bindCommand(first, unbind: false) == .success(Step(channel: 1, action: .bind(first), operation: "queue.bind")))
        _ = setup.bindCommand(second, unbind: false)
        _ = setup.bindCommand(first, unbind: false)
        #expect(setup.dynamicBindings == [second, first])
        #expect(setup.bindCommand(second, unbind: true) == .success(Step(channel: 1, action: .unbind(second), operation: "queue.unbind")))
        #expect(setup.dynamicBindings == [first])
        // Unbinding what was never bound still reaches the broker, and records nothing.
        let never = AMQPTopology.Binding(queue: "other", exchange: "amq.topic", routingKey: "x")
        #expect(setup.bindCommand(never, unbind: true) == .success(Step(channel: 1, action: .unbind(never), operation: "queue.unbind")))
        #expect(setup.dynamicBindings == [first])
    }

    @Test func aRefusedBindingIsNotDeclaredOnTheNextConnect() {
        var setup = setup(AMQPTopology())
        let refused = AMQPTopology.Binding(queue: "missing", exchange: "amq.direct", routingKey: "x")
        _ = setup.bindCommand(refused, unbind: false)
        setup.refused(refused)
        #expect(setup.dynamicBindings == [])
        #expect(!setup.channelSteps.contains { $0.action == .bind(refused) })
    }

    @Test func namesOverAShortStringFailTheirCommandAndRecordNothing() {
        var setup = setup()
        let fits = String(repeating: "a", count: 255)
        let long = String(repeating: "é", count: 128)  // 128 characters, 256 bytes
        let bound = AMQPTopology.Binding(queue: "notices", exchange: "amq.topic", routingKey: "user.1")
        _ = setup.bindCommand(bound, unbind: false)
        let cases: [(AMQPTopology.Binding, String)] = [
            (.init(queue: long, exchange: long, routingKey: long), "queue"),
            (.init(queue: "q", exchange: long, routingKey: long), "exchange"),
            (.init(queue: "q", exchange: "x", routingKey: long), "routing key"),
        ]
        for (binding, label) in cases {
            #expect(setup.bindCommand(binding, unbind: false) == .failure(.tooLong(label)))
            #expect(setup.bindCommand(binding, unbind: true) == .failure(.tooLong(label)))
        }
        let tooLongUnbind = AMQPTopology.Binding(queue: "notices", exchange: "amq.topic", routingKey: "user.1" + long)
        #expect(setup.bindCommand(tooLongUnbind, unbind: true) == .failure(.tooLong("routing key")))
        #expect(setup.dynamicBindings == [bound])
        let longest = AMQPTopology.Binding(queue: fits, exchange: fits, routingKey: fits)
        #expect(setup.bindCommand(longest, unbind: false) == .success(Step(channel: 1, action: .bind(longest), operation: "queue.bind")))
    }

    @Test func publishNamesAreCheckedExchangeFirst() {
        let long = String(repeating: "x", count: 256)
        let fits = String(repeating: "x", count: 255)
        #expect(ConnectionSetup.checkPublish(exchange: "", routingKey: "") == nil)
        #expect(ConnectionSetup.checkPublish(exchange: fits, routingKey: fits) == nil)
        #expect(ConnectionSetup.checkPublish(exchange: long, routingKey: long) == .tooLong("exchange"))
        #expect(ConnectionSetup.checkPublish(exchange: "", routingKey: long) == .tooLong("routing key"))
        // Bytes, not characters: 85 three-byte characters fit, 86 do not.
        #expect(ConnectionSetup.checkPublish(exchange: "", routingKey: String(repeating: "€", count: 85)) == nil)
        #expect(ConnectionSetup.checkPublish(exchange: "", routingKey: String(repeating: "€", count: 86)) == .tooLong("routing key"))
        // A huge name is refused like any other.
        #expect(ConnectionSetup.checkPublish(exchange: String(repeating: "x", count: 1 << 20), routingKey: "") == .tooLong("exchange"))
    }
}
