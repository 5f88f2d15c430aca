import Testing

@testable import RabbitMQ

@Suite struct DeliveryAssemblerTests {
    let properties = AMQPProperties(contentType: "application/json", deliveryMode: 2, messageId: "m-1")

    func start(_ assembler: inout DeliveryAssembler, tag: UInt64, size: UInt64) {
        assembler.deliver(tag: tag, redelivered: false, exchange: "amq.topic", routingKey: "user.7")
        assembler.header(properties, bodySize: size)
    }

    @Test func framesMakeADeliveryOnceTheBodyReachesItsSize() {
        var assembler = DeliveryAssembler(connection: 3)
        assembler.deliver(tag: 9, redelivered: true, exchange: "amq.topic", routingKey: "user.7")
        assembler.header(properties, bodySize: 5)
        assembler.body([1, 2])
        assembler.body([3, 4])
        #expect(assembler.takeCompleted().isEmpty)
        #expect(assembler.isAssembling)
        assembler.body([5])
        #expect(!assembler.isAssembling)
        let expected = AMQPDelivery(
            tag: DeliveryTag(connection: 3, value: 9),
            redelivered: true,
            exchange: "amq.topic",
            routingKey: "user.7",
            message: AMQPMessage(body: [1, 2, 3, 4, 5], properties: properties)
        )
        #expect(assembler.takeCompleted() == [expected])
        #expect(assembler.takeCompleted().isEmpty)
    }

    @Test func anEmptyBodyIsCompleteAtItsHeader() {
        var assembler = DeliveryAssembler(connection: 1)
        start(&assembler, tag: 1, size: 0)
        #expect(assembler.takeCompleted().map(\.message.body) == [[]])
        // A body frame after it belongs to no delivery.
        assembler.body([1])
        #expect(assembler.takeCompleted().isEmpty)
    }

    @Test func deliveriesComeOutInOrder() {
        var assembler = DeliveryAssembler(connection: 1)
        for tag in 1...3 as ClosedRange<UInt64> {
            start(&assembler, tag: tag, size: 1)
            assembler.body([UInt8(tag)])
        }
        let batch = assembler.takeCompleted()
        #expect(batch.map(\.tag.value) == [1, 2, 3])
        #expect(batch.map(\.message.body) == [[1], [2], [3]])
    }

    @Test func aFragmentPastTheDeclaredSizeCompletesTheDeliveryAndIsKeptWhole() {
        var assembler = DeliveryAssembler(connection: 1)
        start(&assembler, tag: 1, size: 3)
        assembler.body([1, 2])
        assembler.body([3, 4, 5])
        #expect(assembler.takeCompleted().map(\.message.body) == [[1, 2, 3, 4, 5]])
    }

    /// Declared body sizes with the length and reservation they give.
    static let declaredSizes: [(UInt64, Int, Int)] = [
        (0, 0, 0),
        (4096, 4096, 4096),
        (1 << 20, 1 << 20, 1 << 20),
        ((1 << 20) + 1, (1 << 20) + 1, 1 << 20),
        (UInt64(Int.max) + 1, Int.max, 1 << 20),
        (UInt64.max, Int.max, 1 << 20),
    ]

    @Test(arguments: declaredSizes)
    func aHugeDeclaredSizeReservesOnlyTheBound(declared: UInt64, size: Int, reservation: Int) {
        let bounds = DeliveryAssembler.bounds(ofDeclaredSize: declared)
        #expect(bounds.size == size)
        #expect(bounds.reservation == reservation)
        #expect(bounds.reservation <= DeliveryAssembler.maxReservation)
    }

    @Test func aDeliveryThatNeverReachesAHugeDeclaredSizeIsDroppedByTheNextOne() {
        var assembler = DeliveryAssembler(connection: 1)
        start(&assembler, tag: 1, size: .max)
        assembler.body(Array(repeating: 7, count: 70_000))
        #expect(assembler.isAssembling)
        #expect(assembler.takeCompleted().isEmpty)
        start(&assembler, tag: 2, size: 1)
        assembler.body([2])
        #expect(assembler.takeCompleted().map(\.tag.value) == [2])
    }

    @Test func framesOutOfOrderAreIgnored() {
        var assembler = DeliveryAssembler(connection: 1)
        // Content with no basic.deliver before it.
        assembler.header(properties, bodySize: 0)
        assembler.body([1])
        #expect(!assembler.isAssembling)
        // A body before its header.
        assembler.deliver(tag: 1, redelivered: false, exchange: "", routingKey: "q")
        assembler.body([9, 9])
        // A second header: the first one's properties and size hold.
        assembler.header(properties, bodySize: 2)
        assembler.header(AMQPProperties(), bodySize: 0)
        #expect(assembler.takeCompleted().isEmpty)
        assembler.body([1, 2])
        let batch = assembler.takeCompleted()
        #expect(batch.map(\.message) == [AMQPMessage(body: [1, 2], properties: properties)])
    }

    @Test func aNewDeliverDropsTheOneInProgress() {
        var assembler = DeliveryAssembler(connection: 1)
        start(&assembler, tag: 1, size: 4)
        assembler.body([1, 2])
        start(&assembler, tag: 2, size: 2)
        assembler.body([3, 4])
        #expect(assembler.takeCompleted().map(\.tag.value) == [2])
        #expect(!assembler.isAssembling)
    }

    @Test func aReturnedMessagesContentIsSkippedUntilTheNextDeliver() {
        var assembler = DeliveryAssembler(connection: 1)
        assembler.returned()
        assembler.header(properties, bodySize: 1)
        assembler.body([1])
        #expect(assembler.takeCompleted().isEmpty)
        start(&assembler, tag: 5, size: 1)
        assembler.body([5])
        #expect(assembler.takeCompleted().map(\.tag.value) == [5])
    }

    @Test func discardForgetsTheDeliveryInProgressAndTheUntaken() {
        var assembler = DeliveryAssembler(connection: 1)
        start(&assembler, tag: 1, size: 1)
        assembler.body([1])
        start(&assembler, tag: 2, size: 3)
        assembler.body([2])
        assembler.discard()
        #expect(!assembler.isAssembling)
        #expect(assembler.takeCompleted().isEmpty)
        assembler.body([2, 2])
        #expect(assembler.takeCompleted().isEmpty)
    }
}
