import Testing

@testable import StompServer

@Suite struct OutboundBudgetTests {
    let second: Int64 = 1_000_000_000

    @Test func goingOverTheLimitIsReportedOnceUntilTheQueueDrains() {
        let budget = OutboundBudget(limit: 1000, grace: .seconds(3))
        #expect(budget.admit(600, now: 1) == .queued)
        #expect(budget.admit(600, now: 2) == .overLimit)
        #expect(budget.admit(600, now: 3) == .queued)
        #expect(budget.queuedBytes == 1800)
        budget.release(600)
        budget.release(600)
        #expect(budget.queuedBytes == 600)
        // Drained under the limit: the next time over counts from scratch.
        #expect(budget.admit(600, now: 10) == .overLimit)
    }

    @Test func aReaderOverTheLimitForTheWholeGraceIsTooSlow() {
        let budget = OutboundBudget(limit: 1000, grace: .seconds(3))
        #expect(budget.isOverGrace(now: 100 * second) == false)
        #expect(budget.admit(2000, now: 100 * second) == .overLimit)
        #expect(budget.isOverGrace(now: 102 * second) == false)
        #expect(budget.isOverGrace(now: 103 * second) == true)
    }

    @Test func aReaderThatCatchesUpWithinTheGraceIsFine() {
        let budget = OutboundBudget(limit: 1000, grace: .seconds(3))
        #expect(budget.admit(2000, now: 100 * second) == .overLimit)
        budget.release(1500)
        #expect(budget.isOverGrace(now: 200 * second) == false)
    }

    @Test func overTheHardLimitTheConnectionIsCutOffOnceAndLaterNoticesDropped() {
        let budget = OutboundBudget(limit: 100, grace: .seconds(3))
        #expect(budget.hardLimit == 100 * OutboundBudget.hardLimitFactor)
        #expect(budget.admit(1600, now: 1) == .overLimit)
        #expect(budget.admit(1, now: 2) == .cutOff)
        #expect(budget.isCutOff == true)
        #expect(budget.admit(1, now: 3) == .refused)
        #expect(budget.cutOff() == false)
    }

    @Test func cuttingOffIsReportedOnlyOnce() {
        let budget = OutboundBudget(limit: 100, grace: .seconds(3))
        #expect(budget.cutOff() == true)
        #expect(budget.cutOff() == false)
        #expect(budget.admit(1, now: 1) == .refused)
    }

    @Test func absurdLimitsSizesAndTimesDoNotTrap() {
        let huge = OutboundBudget(limit: .max, grace: .seconds(Int64.max))
        #expect(huge.hardLimit == .max)
        #expect(huge.admit(.max, now: .max) == .queued)
        #expect(huge.admit(.max, now: .max) == .queued)
        #expect(huge.queuedBytes == .max)
        let negative = OutboundBudget(limit: -5, grace: .zero)
        #expect(negative.limit == 0)
        #expect(negative.admit(1, now: 0) == .cutOff)
        let instant = OutboundBudget(limit: 1, grace: .zero)
        #expect(instant.admit(2, now: 5) == .overLimit)
        #expect(instant.isOverGrace(now: .min) == true)
        let slow = OutboundBudget(limit: 1, grace: .seconds(Int64.max))
        #expect(slow.admit(2, now: 1) == .overLimit)
        #expect(slow.isOverGrace(now: .max - 1) == false)
    }
}
