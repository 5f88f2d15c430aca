import Testing

@testable import RabbitMQ

@Suite struct DeliveryBatchesTests {
    func delivery(_ connection: UInt64, _ tag: UInt64) -> AMQPDelivery {
        AMQPDelivery(
            tag: DeliveryTag(connection: connection, value: tag),
            redelivered: connection > 1,
            exchange: "",
            routingKey: "q",
            message: AMQPMessage(body: [])
        )
    }

    @Test func whatArrivedMeanwhileIsOneBatchInOrder() async {
        let batches = DeliveryBatches()
        batches.yield([delivery(1, 1)])
        batches.yield([delivery(1, 2), delivery(1, 3)])
        #expect(await batches.next()?.map(\.tag.value) == [1, 2, 3])
        batches.yield([delivery(1, 4)])
        batches.finish()
        #expect(await batches.next()?.map(\.tag.value) == [4])
        #expect(await batches.next() == nil)
    }

    @Test func aLostConnectionsUntakenDeliveriesAreDropped() async {
        let batches = DeliveryBatches()
        batches.yield([delivery(1, 1), delivery(1, 2)])
        // Reconnected: the broker redelivers 1 and 2 on connection 2.
        batches.dropPending()
        batches.yield([delivery(2, 1), delivery(2, 2)])
        let batch = await batches.next()
        #expect(batch?.map(\.tag.connection) == [2, 2])
        #expect(batch?.allSatisfy(\.redelivered) == true)
    }
}
