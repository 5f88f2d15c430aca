import Testing

@testable import RabbitMQ

@Suite struct AckTrackerTests {
    @Test func acksOnlyContiguouslySettledDeliveries() {
        var tracker = AckTracker()
        tracker.settle(2)
        tracker.settle(3)
        #expect(tracker.nextAck() == nil)
        tracker.settle(1)
        #expect(tracker.nextAck() == 3)
        #expect(tracker.nextAck() == nil)
        tracker.settle(5)
        tracker.settle(4)
        tracker.settle(3)
        #expect(tracker.nextAck() == 5)
        #expect(tracker.waiting == 0)
    }
}
