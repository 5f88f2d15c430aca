import Synchronization
import Testing

@testable import StompServer

@Suite struct InboundCreditTests {
    /// What a connection is to its credit: the object it is stored in, which a waiting reader refers to.
    final class Owner: Sendable {
        let credit: InboundCredit

        init(limit: Int) { credit = InboundCredit(limit: limit) }
    }

    @Test func pastTheLimitTheReaderIsToldToWaitAndWokenWhenCaughtUp() {
        let credit = InboundCredit(limit: 100)
        #expect(credit.add(60) == true)
        #expect(credit.add(40) == true)
        #expect(credit.add(1) == false)
        let woken = Atomic<Int>(0)
        credit.whenReady { woken.wrappingAdd(1, ordering: .relaxed) }
        #expect(woken.load(ordering: .relaxed) == 0)
        credit.remove(0)
        #expect(woken.load(ordering: .relaxed) == 0)
        credit.remove(1)
        #expect(woken.load(ordering: .relaxed) == 1)
        // Once: a later catch-up does not call it again.
        #expect(credit.add(50) == false)
        credit.remove(50)
        #expect(woken.load(ordering: .relaxed) == 1)
    }

    @Test func aReaderThatIsReadyIsToldAtOnce() {
        let credit = InboundCredit(limit: 100)
        let woken = Atomic<Bool>(false)
        credit.whenReady { woken.store(true, ordering: .relaxed) }
        #expect(woken.load(ordering: .relaxed) == true)
    }

    @Test func theEndWakesEveryoneAndReadingMayGoOn() {
        let credit = InboundCredit(limit: 10)
        #expect(credit.add(11) == false)
        let woken = Atomic<Int>(0)
        credit.whenReady { woken.wrappingAdd(1, ordering: .relaxed) }
        credit.whenReady { woken.wrappingAdd(1, ordering: .relaxed) }
        credit.finish()
        #expect(woken.load(ordering: .relaxed) == 2)
        #expect(credit.add(1_000_000) == true)
        #expect(credit.isReady == true)
    }

    @Test func aWaitingTaskResumesWhenTheDriverCatchesUp() async {
        let owner = Owner(limit: 10)
        #expect(owner.credit.add(20) == false)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await owner.credit.waitUntilReady() }
            owner.credit.remove(15)
            await group.waitForAll()
        }
        #expect(owner.credit.isReady == true)
    }

    @Test func aWaitingTaskResumesWhenCancelled() async {
        let owner = Owner(limit: 10)
        #expect(owner.credit.add(20) == false)
        let waiter = Task { await owner.credit.waitUntilReady() }
        waiter.cancel()
        await waiter.value
        #expect(owner.credit.isReady == false)
    }

    @Test func absurdCountsDoNotTrap() {
        let credit = InboundCredit(limit: .max)
        #expect(credit.add(.max) == true)
        #expect(credit.add(.max) == true)
        credit.remove(.max)
        let negative = InboundCredit(limit: -1)
        #expect(negative.limit == 0)
        #expect(negative.add(1) == false)
        negative.remove(.max)
        #expect(negative.isReady == true)
    }
}
