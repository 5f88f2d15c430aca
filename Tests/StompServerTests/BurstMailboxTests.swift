import Synchronization
import Testing

@testable import StompServer

@Suite struct BurstMailboxTests {
    /// The state of the tests' connection: the events it handled, in order.
    struct Log: Sendable, Equatable {
        var handled: [Int] = []
    }

    /// A mailbox whose bursts the test runs itself, synchronously: `run` returns at once, so
    /// the burst it stands for ends only when the test's ``BurstMailbox/next(orPark:)`` finds no event.
    func manualMailbox() -> BurstMailbox<Log, Int> {
        let mailbox = BurstMailbox<Log, Int>()
        mailbox.open(with: Log()) {}
        return mailbox
    }

    func drain(_ mailbox: BurstMailbox<Log, Int>) -> Log? {
        guard var log = mailbox.beginBurst() else { return nil }
        while let event = mailbox.next(orPark: log) { log.handled.append(event) }
        return log
    }

    @Test func everyEventIsHandledOnceInOrderByOneOwnerAtATime() async throws {
        let mailbox = BurstMailbox<Log, Int>()
        enum Signal { case handled, parked }
        let (signals, signal) = AsyncStream<Signal>.makeStream()
        let bursts = Atomic<Int>(0)
        mailbox.open(with: Log()) {
            guard var log = mailbox.beginBurst() else { return }
            bursts.wrappingAdd(1, ordering: .relaxed)
            while let event = mailbox.next(orPark: log) {
                log.handled.append(event)
                await Task.yield()
                signal.yield(.handled)
            }
            signal.yield(.parked)
        }
        // Four producers at once; each one's events carry its number and a sequence.
        let producers = 4
        let perProducer = 500
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for sequence in 0..<perProducer { mailbox.post(producer * 10_000 + sequence) }
                }
            }
        }
        // The burst that handles the last event parks the state next.
        var count = 0
        for await signal in signals {
            if signal == .handled { count += 1 }
            if signal == .parked, count == producers * perProducer { break }
        }
        let log = try #require(mailbox.takeIfIdle { _ in true })
        // Had two bursts run at once, each with its own copy of the state, events would be missing.
        #expect(log.handled.count == producers * perProducer)
        for producer in 0..<producers {
            #expect(log.handled.filter { $0 / 10_000 == producer } == (0..<perProducer).map { producer * 10_000 + $0 })
        }
        #expect(bursts.load(ordering: .relaxed) >= 1)
        mailbox.finish()
    }

    @Test func eventsPostedBeforeTheOpeningWaitForIt() {
        let mailbox = BurstMailbox<Log, Int>()
        mailbox.post(1)
        mailbox.post(2)
        #expect(!mailbox.isRunning)
        mailbox.open(with: Log()) {}
        #expect(mailbox.isRunning)
        #expect(drain(mailbox)?.handled == [1, 2])
        #expect(!mailbox.isRunning)
    }

    @Test func anIdleMailboxHoldsNoBurstAndHandsItsStateOut() throws {
        let mailbox = manualMailbox()
        #expect(!mailbox.isRunning)
        mailbox.post(1)
        // A burst runs (the test's): nobody else may take the state.
        #expect(mailbox.takeIfIdle { _ in true } == nil)
        _ = drain(mailbox)
        #expect(!mailbox.isRunning)
        // Refused when the caller's condition does not hold; then taken.
        #expect(mailbox.takeIfIdle { _ in false } == nil)
        var log = try #require(mailbox.takeIfIdle { _ in true })
        #expect(log.handled == [1])
        // While it is taken, events wait and no burst starts...
        mailbox.post(2)
        #expect(!mailbox.isRunning)
        #expect(mailbox.takeIfIdle { _ in true } == nil)
        // ...until it is given back (with an event of the taker's, after those).
        log.handled.append(100)
        mailbox.giveBack(log, appending: 3)
        #expect(mailbox.isRunning)
        #expect(drain(mailbox)?.handled == [1, 100, 2, 3])
    }

    @Test func aWaitingEventKeepsTheStateFromBeingTaken() {
        let mailbox = manualMailbox()
        _ = drain(mailbox)
        mailbox.post(1)
        #expect(mailbox.takeIfIdle { _ in true } == nil)
    }

    @Test func finishingDropsWaitingAndLaterEventsAndStartsNoBurst() {
        let mailbox = manualMailbox()
        mailbox.post(1)
        mailbox.post(2)
        mailbox.finish()
        #expect(mailbox.isFinished)
        #expect(mailbox.waitingCount == 0)
        mailbox.post(3)
        #expect(mailbox.waitingCount == 0)
        #expect(!mailbox.isRunning)
        #expect(mailbox.takeIfIdle { _ in true } == nil)
        mailbox.giveBack(Log(), appending: 4)
        #expect(mailbox.waitingCount == 0)
        #expect(!mailbox.isRunning)
    }

    @Test func aLongBurstFreesWhatItHandled() throws {
        let mailbox = manualMailbox()
        let total = 3 * BurstMailbox<Log, Int>.compactionThreshold
        for event in 0..<total { mailbox.post(event) }
        var log = try #require(mailbox.beginBurst())
        for _ in 0..<(total / 2) { log.handled.append(try #require(mailbox.next(orPark: log))) }
        // Half handed out: dropped from the queue, not kept until the burst ends.
        #expect(mailbox.storedCount == total - total / 2)
        while let event = mailbox.next(orPark: log) { log.handled.append(event) }
        #expect(log.handled == Array(0..<total))
        #expect(mailbox.storedCount == 0)
        #expect(!mailbox.isRunning)
    }
}
