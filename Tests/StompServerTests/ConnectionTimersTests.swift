import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import StompServer

@Suite struct ConnectionTimersTests {
    /// Timers on an embedded loop whose wall clock follows the loop's virtual time.
    func timers(on loop: EmbeddedEventLoop, startingAt base: Int64 = 1_700_000_000_000) -> ConnectionTimers {
        let start = loop.now.uptimeNanoseconds
        return ConnectionTimers(eventLoop: loop) { base + Int64((loop.now.uptimeNanoseconds - start) / 1_000_000) }
    }

    @Test func aSlotHoldsOneTimerTheLatest() {
        let loop = EmbeddedEventLoop()
        let timers = timers(on: loop)
        let fired = Mutex<[String]>([])
        timers.schedule(.slowReader, after: .milliseconds(10)) { fired.withLock { $0.append("first") } }
        timers.schedule(.slowReader, after: .milliseconds(10)) { fired.withLock { $0.append("second") } }
        timers.schedule(.connectTimeout, after: .milliseconds(10)) { fired.withLock { $0.append("other slot") } }
        loop.advanceTime(by: .milliseconds(20))
        #expect(fired.withLock { $0 }.sorted() == ["other slot", "second"])
    }

    @Test func stoppingCancelsEveryTimerNowAndLater() {
        let loop = EmbeddedEventLoop()
        let timers = timers(on: loop)
        let fired = Atomic<Int>(0)
        timers.schedule(.expiry, after: .milliseconds(5)) { fired.wrappingAdd(1, ordering: .relaxed) }
        timers.repeatEvery(.milliseconds(1)) { fired.wrappingAdd(1, ordering: .relaxed) }
        timers.stop()
        timers.schedule(.connectTimeout, after: .milliseconds(1)) { fired.wrappingAdd(1, ordering: .relaxed) }
        timers.repeatEvery(.milliseconds(1)) { fired.wrappingAdd(1, ordering: .relaxed) }
        loop.advanceTime(by: .seconds(1))
        #expect(fired.load(ordering: .relaxed) == 0)
    }

    @Test func aRepetitionRunsUntilCancelledByStop() {
        let loop = EmbeddedEventLoop()
        let timers = timers(on: loop)
        let fired = Atomic<Int>(0)
        timers.repeatEvery(.milliseconds(10)) { fired.wrappingAdd(1, ordering: .relaxed) }
        loop.advanceTime(by: .milliseconds(35))
        #expect(fired.load(ordering: .relaxed) == 3)
        timers.stop()
        loop.advanceTime(by: .milliseconds(100))
        #expect(fired.load(ordering: .relaxed) == 3)
    }

    @Test func aDistantDeadlineIsReachedInStepsOfADay() {
        let loop = EmbeddedEventLoop()
        let base: Int64 = 1_700_000_000_000
        let timers = timers(on: loop, startingAt: base)
        let fired = Atomic<Bool>(false)
        let day: Int64 = 86_400_000
        timers.schedule(.expiry, atUnixMillis: base + 2 * day + day / 2) { fired.store(true, ordering: .relaxed) }
        loop.advanceTime(by: .hours(24))
        #expect(fired.load(ordering: .relaxed) == false)
        loop.advanceTime(by: .hours(24))
        #expect(fired.load(ordering: .relaxed) == false)
        loop.advanceTime(by: .hours(11))
        #expect(fired.load(ordering: .relaxed) == false)
        loop.advanceTime(by: .hours(1) + .milliseconds(2))
        #expect(fired.load(ordering: .relaxed) == true)
    }

    @Test func aWallClockSetBackDelaysTheDeadlineInsteadOfLosingIt() {
        let loop = EmbeddedEventLoop()
        let base: Int64 = 1_700_000_000_000
        let start = loop.now.uptimeNanoseconds
        let shift = Mutex<Int64>(0)
        let timers = ConnectionTimers(eventLoop: loop) {
            base + Int64((loop.now.uptimeNanoseconds - start) / 1_000_000) + shift.withLock { $0 }
        }
        let fired = Atomic<Bool>(false)
        timers.schedule(.expiry, atUnixMillis: base + 10_000) { fired.store(true, ordering: .relaxed) }
        // Five seconds in, the wall clock is set back by three.
        loop.advanceTime(by: .seconds(5))
        shift.withLock { $0 = -3_000 }
        loop.advanceTime(by: .seconds(5) + .milliseconds(2))
        #expect(fired.load(ordering: .relaxed) == false, "the wall clock says 7 s: not yet")
        loop.advanceTime(by: .seconds(3))
        #expect(fired.load(ordering: .relaxed) == true)
        timers.stop()
    }

    @Test func aPastDeadlineFiresAtOnceAndAnAbsurdOneNeverTraps() {
        let loop = EmbeddedEventLoop()
        let timers = timers(on: loop)
        let fired = Atomic<Int>(0)
        timers.schedule(.expiry, atUnixMillis: .min) { fired.wrappingAdd(1, ordering: .relaxed) }
        loop.advanceTime(by: .milliseconds(2))
        #expect(fired.load(ordering: .relaxed) == 1)
        timers.schedule(.expiry, atUnixMillis: .max) { fired.wrappingAdd(1, ordering: .relaxed) }
        timers.schedule(.slowReader, after: .seconds(Int64.max)) { fired.wrappingAdd(1, ordering: .relaxed) }
        loop.advanceTime(by: .hours(24 * 10))
        #expect(fired.load(ordering: .relaxed) == 1)
        timers.stop()
    }
}
