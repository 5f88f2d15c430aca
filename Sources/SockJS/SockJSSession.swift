public import HTTPTypes
public import HummingbirdCore
import Synchronization

/// One SockJS session: the messages queued for the browser, at most one receiver (the HTTP
/// response or WebSocket currently carrying them), and the inbound messages for the
/// application.
///
/// States: *new* (the open frame not yet sent) → *open* → *closed* (a close frame is served
/// to every later receiver until the session is forgotten). Time passes through ``tick(now:)``,
/// which the server's reaper calls: it marks heartbeats due and tells when a session without
/// a receiver has outlived the disconnect delay.
public final class SockJSSession: Sendable {
    /// A receiver's claim on the session: its id and the signal that there is something to send.
    struct Receiver: Sendable {
        let id: UInt64
        let wake: AsyncStream<Void>
    }

    enum Attach {
        case attached(Receiver)
        /// Another receiver holds the session.
        case busy
        /// The session is closed and has nothing left to deliver.
        case closed(SockJSFrame)
    }

    /// What a receiver should write next.
    enum Take {
        case frames([SockJSFrame], last: Bool)
        case idle
    }

    struct State {
        var opened = false
        var closeFrame: SockJSFrame?
        var outbox: [String] = []
        var outboxBytes = 0
        var receiver: UInt64?
        var wake: AsyncStream<Void>.Continuation?
        var nextReceiver: UInt64 = 1
        var idleSince: ContinuousClock.Instant? = .now
        var lastFrameAt: ContinuousClock.Instant = .now
        var heartbeatDue = false
        /// Senders waiting for the outbox to drain (``sendWhenRoom(_:)``).
        var roomWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters cancelled before they were registered.
        var cancelledWaiters: Set<UInt64> = []
        var nextWaiter: UInt64 = 0

        /// Takes the waiters to resume (after the lock): the outbox drained, or the session closed.
        mutating func takeRoomWaiters() -> [CheckedContinuation<Void, Never>] {
            guard !roomWaiters.isEmpty else { return [] }
            defer { roomWaiters = [:] }
            return Array(roomWaiters.values)
        }
    }

    /// The session id from the URL (WebSocket sessions get a private key instead).
    public let id: String
    /// The transport of the request that opened the session.
    public let transport: SockJSTransport
    /// The URI of the request that opened the session (its query carries e.g. `access_token`).
    public let uri: URI
    /// The headers of the request that opened the session.
    public let headers: HTTPFields

    let configuration: SockJSConfiguration
    let state = Mutex(State())
    private let inbound: AsyncStream<String>
    let inboundInput: AsyncStream<String>.Continuation
    let pendingInbound = Atomic<Int>(0)

    init(id: String, transport: SockJSTransport, uri: URI, headers: HTTPFields, configuration: SockJSConfiguration) {
        self.id = id
        self.transport = transport
        self.uri = uri
        self.headers = headers
        self.configuration = configuration
        (inbound, inboundInput) = AsyncStream.makeStream(of: String.self)
    }

    // MARK: Application side

    /// Queues `message` for the browser.
    public func send(_ message: String) throws(SockJSError) {
        var waiters: [CheckedContinuation<Void, Never>] = []
        let wake: AsyncStream<Void>.Continuation?
        do {
            wake = try state.withLock { state throws(SockJSError) in
                guard state.closeFrame == nil else { throw .sessionClosed }
                state.outbox.append(message)
                state.outboxBytes += message.utf8.count
                guard state.outboxBytes <= configuration.maxQueuedBytes else {
                    state.outbox = []
                    state.outboxBytes = 0
                    state.closeFrame = .close(code: 1013, reason: "Too many messages queued")
                    state.wake?.yield()
                    waiters = state.takeRoomWaiters()
                    inboundInput.finish()
                    throw .queueFull
                }
                return state.wake
            }
        } catch {
            for waiter in waiters { waiter.resume() }
            throw error
        }
        wake?.yield()
    }

    /// Queues `message` once the outbox has room for it, waiting meanwhile for a receiver to
    /// take what is queued: a sender that has much to send (a replay) is paced by what the
    /// browser drains, on every transport, instead of overflowing the queue. An empty outbox
    /// takes any message. Throws ``SockJSError/sessionClosed`` once the session is closed (a
    /// browser that stops polling is gone after the disconnect delay, which ends the wait).
    public func sendWhenRoom(_ message: String) async throws(SockJSError) {
        let size = message.utf8.count
        while true {
            enum Step {
                case sent(AsyncStream<Void>.Continuation?)
                case wait, closed
            }
            let step = state.withLock { state -> Step in
                guard state.closeFrame == nil else { return .closed }
                guard state.outbox.isEmpty || state.outboxBytes + size <= configuration.maxQueuedBytes else { return .wait }
                state.outbox.append(message)
                state.outboxBytes += size
                return .sent(state.wake)
            }
            switch step {
            case .sent(let wake):
                wake?.yield()
                return
            case .closed:
                throw .sessionClosed
            case .wait:
                if Task.isCancelled { throw .sessionClosed }
                await waitForRoom(size: size)
            }
        }
    }

    /// Returns once the outbox has room for `size` bytes, or it is closed, or the task is cancelled.
    private func waitForRoom(size: Int) async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    // Cancelled before it got here: the handler found nothing to resume.
                    if state.cancelledWaiters.remove(id) != nil { return true }
                    if state.closeFrame != nil || state.outbox.isEmpty || state.outboxBytes + size <= configuration.maxQueuedBytes { return true }
                    state.roomWaiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.roomWaiters.removeValue(forKey: id) { return waiter }
                state.cancelledWaiters.insert(id)
                return nil
            }?.resume()
        }
        // A waiter resumed otherwise leaves no mark behind.
        state.withLock { _ = $0.cancelledWaiters.remove(id) }
    }

    /// Closes the session: receivers get what is queued, then `frame`.
    public func close(_ frame: SockJSFrame = .goAway) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.closeFrame == nil else { return [] }
            state.closeFrame = frame
            state.wake?.yield()
            return state.takeRoomWaiters()
        }
        for waiter in waiters { waiter.resume() }
        inboundInput.finish()
    }

    /// Whether the session is closed.
    public var isClosed: Bool { state.withLock { $0.closeFrame != nil } }

    /// The browser's messages, in order; ends when the session closes.
    public var messages: SockJSMessages { SockJSMessages(stream: inbound, pending: self) }

    fileprivate func consumed(_ message: String) {
        pendingInbound.wrappingSubtract(message.utf8.count, ordering: .relaxed)
    }
}

/// The browser's messages to one session, in order; ends when the session closes.
public struct SockJSMessages: AsyncSequence, Sendable {
    public typealias Element = String
    let stream: AsyncStream<String>
    let pending: SockJSSession

    public struct AsyncIterator: AsyncIteratorProtocol {
        var iterator: AsyncStream<String>.AsyncIterator
        let pending: SockJSSession

        public mutating func next() async -> String? {
            guard let message = await iterator.next() else { return nil }
            pending.consumed(message)
            return message
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(iterator: stream.makeAsyncIterator(), pending: pending)
    }
}
