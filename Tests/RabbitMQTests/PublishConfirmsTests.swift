import Testing

@testable import RabbitMQ

@Suite struct PublishConfirmsTests {
    /// Publishes 1...count, each waiter named by its sequence number.
    func published(_ count: Int) -> PublishConfirms<Int> {
        var confirms = PublishConfirms<Int>()
        for index in 1...count { #expect(confirms.published(index) == UInt64(index)) }
        return confirms
    }

    @Test func aSingleConfirmSettlesOnlyItsOwnPublish() {
        var confirms = published(3)
        #expect(confirms.confirm(2, multiple: false) == [2])
        #expect(confirms.confirm(3, multiple: false) == [3])
        #expect(confirms.confirm(1, multiple: false) == [1])
        #expect(confirms.count == 0)
    }

    @Test func aMultipleConfirmSettlesEveryPublishUpToItOldestFirst() {
        var confirms = published(5)
        #expect(confirms.confirm(3, multiple: true) == [1, 2, 3])
        #expect(confirms.oldestUnconfirmed == 4)
        #expect(confirms.confirm(5, multiple: true) == [4, 5])
        #expect(confirms.count == 0)
    }

    @Test func aMultipleConfirmSkipsTheGapsSingleConfirmsLeft() {
        var confirms = published(5)
        #expect(confirms.confirm(2, multiple: false) == [2])
        #expect(confirms.confirm(4, multiple: false) == [4])
        #expect(confirms.oldestUnconfirmed == 1, "single confirms leave the oldest alone")
        #expect(confirms.confirm(5, multiple: true) == [1, 3, 5])
        #expect(confirms.count == 0)
    }

    @Test func repeatedAndOutOfOrderConfirmsSettleNothingTwice() {
        var confirms = published(4)
        #expect(confirms.confirm(3, multiple: true) == [1, 2, 3])
        #expect(confirms.confirm(2, multiple: false) == [])
        #expect(confirms.confirm(3, multiple: true) == [])
        #expect(confirms.confirm(1, multiple: true) == [])
        #expect(confirms.confirm(4, multiple: false) == [4])
        #expect(confirms.confirm(4, multiple: false) == [])
    }

    /// The confirm says nothing of ack or nack: both settle the same publishes.
    @Test func nacksAndAcksMixSettlingEachPublishOnce() {
        var confirms = published(6)
        let acked = confirms.confirm(2, multiple: true)
        let nacked = confirms.confirm(4, multiple: false)
        let ackedAfter = confirms.confirm(6, multiple: true)
        #expect(acked == [1, 2])
        #expect(nacked == [4])
        #expect(ackedAfter == [3, 5, 6])
    }

    @Test func confirmsOfPublishesNeverSentSettleNothing() {
        var confirms = published(2)
        #expect(confirms.confirm(7, multiple: false) == [])
        #expect(confirms.confirm(0, multiple: false) == [])
        #expect(confirms.confirm(0, multiple: true) == [])
        #expect(confirms.count == 2)
        // A huge multiple tag walks no further than the last publish.
        #expect(confirms.confirm(.max, multiple: true) == [1, 2])
        #expect(confirms.oldestUnconfirmed == 3)
        #expect(confirms.published(3) == 3)
        #expect(confirms.confirm(3, multiple: false) == [3])
    }

    @Test func aLostConnectionReturnsEveryWaiterAndNumbersAgainFromOne() {
        var confirms = PublishConfirms<Int>()
        // Sequence numbers 1...20 with waiters 100...119, so dictionary order is unlikely to pass.
        for waiter in 100..<120 { confirms.published(waiter) }
        _ = confirms.confirm(3, multiple: false)
        _ = confirms.confirm(2, multiple: true)
        #expect(confirms.connectionLost() == Array(103..<120))
        #expect(confirms.count == 0)
        #expect(confirms.oldestUnconfirmed == 1)
        #expect(confirms.connectionLost() == [])
        #expect(confirms.published(7) == 1)
        #expect(confirms.confirm(1, multiple: true) == [7])
    }
}
