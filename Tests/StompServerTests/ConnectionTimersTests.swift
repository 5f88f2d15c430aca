import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import StompServer

@Suite struct ConnectionTimersTests {
    /// What a connection is to its timers: the object they are stored in, told when they fire.
    final class Owner: ConnectionTimersOwner {
        enum Fired: Equatable {
            case slot(ConnectionTimers.Slot)
            case heartBeat
        }

        let timers: ConnectionTimers
        private let log = Mutex<[Fired]>([])

        init(_ timers: consuming ConnectionTimers) { self.timers = timers }

        func timerFired(_ slot: ConnectionTimers.Slot) { log.withLock { $0.append(.slot(slot)) } }
        func heartBeatDue() { log.withLock { $0.append(.heartBeat) } }

        var fired: [Fired] { log.withLock { $0 } }
    }

    /// Timers on an embedded loop whose wall clock follows the loop's virtual time, shifted by `shift`.
    func owner(
        on loop: EmbeddedEventLoop,
        startingAt base: Int64 = 1_700_000_000_000,
        shift: @escaping @Sendable () -> Int64 = { 0 }
    ) -> Owner {
        let start = loop.now.uptimeNanoseconds
        return Owner(
            ConnectionTimers(eventLoop: loop) {
                let elapsedMillis = Int64((loop.now.uptimeNanoseconds - start) / 1_000_000)
                return base + elapsedMillis + shift()
            }
        )
    }

    @Test func aSlotHoldsOneTimerTheLatest() {
        let loop = EmbeddedEventLoop()
        let owner = owner(on: loop)
        owner.timers.schedule(.slowReader, after: .milliseconds(10), in: owner)
        owner.timers.schedule(.slowReader, after: .milliseconds(30), in: owner)
        owner.timers.schedule(.connectTimeout, after: .milliseconds(10), in: owner)
        loop.advanceTime(by: .milliseconds(20))
        #expect(owner.fired == [.slot(.connectTimeout)], "the first slow-reader timer was replaced")
        loop.advanceTime(by: .milliseconds(20))
        #expect(owner.fired == [.slot(.connectTimeout), .slot(.slowReader)])
    }

    @Test func aCancelledSlotDoesNotFire() {
        let loop = EmbeddedEventLoop()
        let owner = owner(on: loop)
        owner.timers.schedule(.connectTimeout, after: .milliseconds(10), in: owner)
        owner.timers.schedule(.expiry, after: .milliseconds(10), in: owner)
        owner.timers.cancel(.connectTimeout)
        loop.advanceTime(by: .milliseconds(20))
        #expect(owner.fired == [.slot(.expiry)])
    }

    @Test func stoppingCancelsEveryTimerNowAndLater() {
        let loop = EmbeddedEventLoop()
        let owner = owner(on: loop)
        owner.timers.schedule(.expiry, after: .milliseconds(5), in: owner)
        owner.timers.repeatEvery(.milliseconds(1), in: owner)
        owner.timers.stop()
        owner.timers.schedule(.connectTimeout, after: .milliseconds(1), in: owner)
        owner.timers.schedule(.expiry, atUnixMillis: 0, in: owner)
        owner.timers.repeatEvery(.milliseconds(1), in: owner)
        loop.advanceTime(by: .seconds(1))
        #expect(owner.fired.isEmpty)
    }

    @Test func aRepetitionRunsUntilCancelledByStop() {
        let loop = EmbeddedEventLoop()
        let owner = owner(on: loop)
        owner.timers.repeatEvery(.milliseconds(10), in: owner)
        loop.advanceTime(by: .milliseconds(35))
        #expect(owner.fired == [.heartBeat, .heartBeat, .heartBeat])
        owner.timers.stop()
        loop.advanceTime(by: .milliseconds(100))
        #expect(owner.fired.count == 3)
    }

    @Test func aDistantDeadlineIsReachedInStepsOfADay() {
        let loop = EmbeddedEventLoop()
        let base: Int64 = 1_700_000_000_000
        let owner = owner(on: loop, startingAt: base)
        let day: Int64 = 86_400_000
        owner.timers.schedule(.expiry, atUnixMillis: base + 2 * day + day / 2, in: owner)
        loop.advanceTime(by: .hours(24))
        #expect(owner.fired.isEmpty)
        loop.advanceTime(by: .hours(24))
        #expect(owner.fired.isEmpty)
        loop.advanceTime(by: .hours(11))
        #expect(owner.fired.isEmpty)
        loop.advanceTime(by: .hours(1) + .milliseconds(2))
        #expect(owner.fired == [.slot(.expiry)])
    }

    @Test func aWallClockSetBackDelaysTheDeadlineInsteadOfLosingIt() {
        let loop = EmbeddedEventLoop()
        let base: Int64 = 1_700_000_000_000
        let shift = Atomic<Int64>(0)
        let owner = owner(on: loop, startingAt: base) { shift.load(ordering: .relaxed) }
        owner.timers.schedule(.expiry, atUnixMillis: base + 10_000, in: owner)
        // Five seconds in, the wall clock is set back by three.
        loop.advanceTime(by: .seconds(5))
        shift.store(-3_000, ordering: .relaxed)
        loop.advanceTime(by: .seconds(5) + .milliseconds(2))
        #expect(owner.fired.isEmpty, "the wall clock says 7 s: not yet")
        loop.advanceTime(by: .seconds(3))
        #expect(owner.fired == [.slot(.expiry)])
        owner.timers.stop()
    }

    @Test func aPastDeadlineFiresAtOnceAndAnAbsurdOneNeverTraps() {
        let loop = EmbeddedEventLoop()
        let owner = owner(on: loop)
        owner.timers.schedule(.expiry, atUnixMillis: .min, in: owner)
        loop.advanceTime(by: .milliseconds(2))
        #expect(owner.fired == [.slot(.expiry)])
        owner.timers.schedule(.expiry, atUnixMillis: .max, in: owner)
        owner.timers.schedule(.slowReader, after: .seconds(Int64.max), in: owner)
        loop.advanceTime(by: .hours(24 * 10))
        #expect(owner.fired.count == 1)
        owner.timers.stop()
    }
}
