import Synchronization
import Testing

@testable import StompServer

@Suite struct InboundCreditTests {
    @Test func pastTheLimitTheReaderIsToldToWaitAndWokenWhenCaughtUp() {
        let credit = InboundCredit(limit: 100)
        #expect(credit.add(60))
        #expect(credit.add(40))
        #expect(!credit.add(1))
        let woken = Atomic<Int>(0)
        credit.whenReady { woken.wrappingAdd(1, ordering: .relaxed) }
        #expect(woken.load(ordering: .relaxed) == 0)
        credit.remove(0)
        #expect(woken.load(ordering: .relaxed) == 0)
        credit.remove(1)
        #expect(woken.load(ordering: .relaxed) == 1)
        // Once: a later catch-up does not call it again.
        #expect(!credit.add(50))
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
        #expect(!credit.add(11))
        let woken = Atomic<Int>(0)
        credit.whenReady { woken.wrappingAdd(1, ordering: .relaxed) }
        credit.whenReady { woken.wrappingAdd(1, ordering: .relaxed) }
        credit.finish()
        #expect(woken.load(ordering: .relaxed) == 2)
        #expect(credit.add(1_000_000))
        #expect(credit.isReady)
    }

    @Test func aWaitingTaskResumesWhenTheDriverCatchesUp() async {
        let credit = InboundCredit(limit: 10)
        #expect(!credit.add(20))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await credit.waitUntilReady() }
            credit.remove(15)
            await group.waitForAll()
        }
        #expect(credit.isReady)
    }

    @Test func aWaitingTaskResumesWhenCancelled() async {
        let credit = InboundCredit(limit: 10)
        #expect(!credit.add(20))
        let waiter = Task { await credit.waitUntilReady() }
        waiter.cancel()
        await waiter.value
        #expect(!credit.isReady)
    }

    @Test func absurdCountsDoNotTrap() {
        let credit = InboundCredit(limit: .max)
        #expect(credit.add(.max))
        #expect(credit.add(.max))
        credit.remove(.max)
        let negative = InboundCredit(limit: -1)
        #expect(negative.limit == 0)
        #expect(!negative.add(1))
        negative.remove(.max)
        #expect(negative.isReady)
    }
}
