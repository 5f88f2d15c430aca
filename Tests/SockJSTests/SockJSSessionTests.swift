import HTTPTypes
import HummingbirdCore
import Testing

@testable import SockJS

/// The session's states, queue and timers, without sockets.
@Suite struct SockJSSessionTests {
    func makeSession(_ configure: (inout SockJSConfiguration) -> Void = { _ in }) -> SockJSSession {
        var configuration = SockJSConfiguration()
        configure(&configuration)
        return SockJSSession(id: "s", transport: .xhrPolling, uri: URI("/ws/0/s/xhr"), headers: [:], configuration: configuration)
    }

    func attach(_ session: SockJSSession) throws -> SockJSSession.Receiver {
        guard case .attached(let receiver) = session.attach() else { throw SessionTestFailure() }
        return receiver
    }

    @Test func openFirstThenQueuedMessagesInOneBatchThenTheCloseFrame() throws {
        let session = makeSession()
        try session.send("early")
        let receiver = try attach(session)
        guard case .frames(let first, false) = session.take(receiver) else { throw SessionTestFailure() }
        #expect(first == [.open])
        try session.send("a")
        guard case .frames(let second, false) = session.take(receiver) else { throw SessionTestFailure() }
        #expect(second == [.messages(["early", "a"])])
        guard case .idle = session.take(receiver) else { throw SessionTestFailure() }
        session.close()
        guard case .frames(let last, true) = session.take(receiver) else { throw SessionTestFailure() }
        #expect(last == [.goAway])
        #expect(throws: SockJSError.sessionClosed) { try session.send("late") }
    }

    @Test func oneReceiverAtATimeAndAClosedSessionAnswersWithItsCloseFrame() throws {
        let session = makeSession()
        let receiver = try attach(session)
        guard case .busy = session.attach() else { throw SessionTestFailure() }
        _ = session.take(receiver)
        session.detach(receiver)
        let next = try attach(session)
        session.close()
        _ = session.take(next)
        session.detach(next)
        guard case .closed(let frame) = session.attach() else { throw SessionTestFailure() }
        #expect(frame == .goAway)
    }

    @Test func aReceiverThatFailsClosesTheSessionAsInterrupted() throws {
        let session = makeSession()
        let receiver = try attach(session)
        _ = session.take(receiver)
        session.detach(receiver, interrupted: true)
        #expect(session.isClosed)
        guard case .closed(let frame) = session.attach() else { throw SessionTestFailure() }
        #expect(frame == .interrupted)
    }

    @Test func queueOverTheLimitClosesTheSessionAndFreesIt() throws {
        let session = makeSession { $0.maxQueuedBytes = 10 }
        try session.send("12345")
        #expect(throws: SockJSError.queueFull) { try session.send("123456") }
        #expect(session.isClosed)
        let receiver = try attach(session)
        guard case .frames(let frames, false) = session.take(receiver) else { throw SessionTestFailure() }
        #expect(frames == [.open])
        guard case .frames(let close, true) = session.take(receiver) else { throw SessionTestFailure() }
        #expect(close == [.close(code: 1013, reason: "Too many messages queued")])
    }

    @Test func heartbeatDueAfterTheIntervalAndExpiryAfterTheDisconnectDelay() throws {
        let session = makeSession {
            $0.heartbeatInterval = .seconds(25)
            $0.disconnectDelay = .seconds(5)
        }
        let receiver = try attach(session)
        _ = session.take(receiver)
        #expect(!session.tick(now: .now + .seconds(24)))
        guard case .idle = session.take(receiver) else { throw SessionTestFailure() }
        #expect(!session.tick(now: .now + .seconds(26)))
        guard case .frames(let frames, false) = session.take(receiver) else { throw SessionTestFailure() }
        #expect(frames == [.heartbeat])
        session.detach(receiver)
        #expect(!session.tick(now: .now + .seconds(4)))
        #expect(session.tick(now: .now + .seconds(6)))
        #expect(session.isClosed)
    }
}

struct SessionTestFailure: Error {}
