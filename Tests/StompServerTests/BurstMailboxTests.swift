import Synchronization
import Testing

@testable import StompServer

@Suite struct BurstMailboxTests {
    /// The state of the tests' connection: the events it handled, in order.
    struct Log: Sendable, Equatable {
        var handled: [Int] = []
    }

    /// What a connection is to its mailbox: the object it is stored in, which runs its bursts.
    /// By default a burst returns at once: the test runs it itself, synchronously, and it ends
    /// only when the test's ``BurstMailbox/next(orPark:)`` finds no event.
    final class Owner: BurstMailboxOwner {
        let mailbox = BurstMailbox<Log, Int>()
        private let burst: @Sendable (Owner) async -> Void

        init(burst: @escaping @Sendable (Owner) async -> Void = { _ in }) { self.burst = burst }

        func runBurst() async { await burst(self) }

        func post(_ event: Int) { mailbox.post(event, in: self) }
        func giveBack(_ log: Log, appending event: Int?) { mailbox.giveBack(log, appending: event, in: self) }
    }

    /// An owner whose mailbox is open, with an empty log.
    func opened() -> Owner {
        let owner = Owner()
        owner.mailbox.open(with: Log(), in: owner)
        return owner
    }

    func drain(_ mailbox: borrowing BurstMailbox<Log, Int>) -> Log? {
        guard var log = mailbox.beginBurst() else { return nil }
        while let event = mailbox.next(orPark: log) { log.handled.append(event) }
        return log
    }

    @Test func everyEventIsHandledOnceInOrderByOneOwnerAtATime() async throws {
        enum Signal { case handled, parked }
        let (signals, signal) = AsyncStream<Signal>.makeStream()
        let bursts = Atomic<Int>(0)
        let owner = Owner { owner in
            guard var log = owner.mailbox.beginBurst() else { return }
            bursts.wrappingAdd(1, ordering: .relaxed)
            while let event = owner.mailbox.next(orPark: log) {
                log.handled.append(event)
                await Task.yield()
                signal.yield(.handled)
            }
            signal.yield(.parked)
        }
        owner.mailbox.open(with: Log(), in: owner)
        // Four producers at once; each one's events carry its number and a sequence.
        let producers = 4
        let perProducer = 500
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for sequence in 0..<perProducer { owner.post(producer * 10_000 + sequence) }
                }
            }
        }
        // The burst that handles the last event parks the state next.
        var count = 0
        for await signal in signals {
            if signal == .handled { count += 1 }
            if signal == .parked, count == producers * perProducer { break }
        }
        let parked = owner.mailbox.takeIfIdle { _ in true }
        let log = try #require(parked)
        // Had two bursts run at once, each with its own copy of the state, events would be missing.
        #expect(log.handled.count == producers * perProducer)
        for producer in 0..<producers {
            #expect(log.handled.filter { $0 / 10_000 == producer } == (0..<perProducer).map { producer * 10_000 + $0 })
        }
        #expect(bursts.load(ordering: .relaxed) >= 1)
        owner.mailbox.finish()
    }

    @Test func eventsPostedBeforeTheOpeningWaitForIt() {
        let owner = Owner()
        owner.post(1)
        owner.post(2)
        #expect(owner.mailbox.isRunning == false)
        owner.mailbox.open(with: Log(), in: owner)
        #expect(owner.mailbox.isRunning == true)
        #expect(drain(owner.mailbox)?.handled == [1, 2])
        #expect(owner.mailbox.isRunning == false)
    }

    @Test func anIdleMailboxHoldsNoBurstAndHandsItsStateOut() throws {
        let owner = opened()
        #expect(owner.mailbox.isRunning == false)
        owner.post(1)
        // A burst runs (the test's): nobody else may take the state.
        #expect(owner.mailbox.takeIfIdle { _ in true } == nil)
        _ = drain(owner.mailbox)
        #expect(owner.mailbox.isRunning == false)
        // Refused when the caller's condition does not hold; then taken.
        #expect(owner.mailbox.takeIfIdle { _ in false } == nil)
        let taken = owner.mailbox.takeIfIdle { _ in true }
        var log = try #require(taken)
        #expect(log.handled == [1])
        // While it is taken, events wait and no burst starts...
        owner.post(2)
        #expect(owner.mailbox.isRunning == false)
        #expect(owner.mailbox.takeIfIdle { _ in true } == nil)
        // ...until it is given back (with an event of the taker's, after those).
        log.handled.append(100)
        owner.giveBack(log, appending: 3)
        #expect(owner.mailbox.isRunning == true)
        #expect(drain(owner.mailbox)?.handled == [1, 100, 2, 3])
    }

    @Test func aWaitingEventKeepsTheStateFromBeingTaken() {
        let owner = opened()
        _ = drain(owner.mailbox)
        owner.post(1)
        #expect(owner.mailbox.takeIfIdle { _ in true } == nil)
    }

    @Test func finishingDropsWaitingAndLaterEventsAndStartsNoBurst() {
        let owner = opened()
        owner.post(1)
        owner.post(2)
        owner.mailbox.finish()
        #expect(owner.mailbox.isFinished == true)
        #expect(owner.mailbox.waitingCount == 0)
        owner.post(3)
        #expect(owner.mailbox.waitingCount == 0)
        #expect(owner.mailbox.isRunning == false)
        #expect(owner.mailbox.takeIfIdle { _ in true } == nil)
        owner.giveBack(Log(), appending: 4)
        #expect(owner.mailbox.waitingCount == 0)
        #expect(owner.mailbox.isRunning == false)
    }

    @Test func aLongBurstFreesWhatItHandled() throws {
        let owner = opened()
        let total = 3 * BurstMailbox<Log, Int>.compactionThreshold
        for event in 0..<total { owner.post(event) }
        let burst = owner.mailbox.beginBurst()
        var log = try #require(burst)
        for _ in 0..<(total / 2) {
            let event = owner.mailbox.next(orPark: log)
            log.handled.append(try #require(event))
        }
        // Half handed out: dropped from the queue, not kept until the burst ends.
        #expect(owner.mailbox.storedCount == total - total / 2)
        while let event = owner.mailbox.next(orPark: log) { log.handled.append(event) }
        #expect(log.handled == Array(0..<total))
        #expect(owner.mailbox.storedCount == 0)
        #expect(owner.mailbox.isRunning == false)
    }
}
