import CoreMetrics
import Foundation
import Logging
public import NIOCore
import NIOPosix
public import NoticeCore
import STOMP
import ServiceLifecycle
import Synchronization

/// One STOMP connection over any message transport: decodes client bytes, drives a
/// ``StompSession``, writes its frames, keeps heart-beats, and is a ``NoticeSink`` for the hub.
///
/// Everything that happens to the connection (client bytes, notices, timer ticks, the end) is
/// an event in its ``BurstMailbox``, handled in order by a ``SessionDriver``. Timers
/// (``ConnectionTimers``) post events. Inbound bytes waiting for the driver are bounded
/// (``InboundCredit``), and so are the notices queued for a slow reader (``OutboundBudget``).
/// These four are noncopyable values stored inline: an idle connection is one object.
public final class StompConnection: NoticeSink, ConnectionTimersOwner, BurstMailboxOwner {
    enum Event: Sendable {
        case bytes(ByteBuffer)
        case notice(PushNotice, bytes: Int)
        case tick
        /// The token expires within ``StompEnvironment/tokenExpiringLead``.
        case tokenExpiring
        case inboundClosed
        case close(message: String, detail: String)
    }

    public let id: String
    /// The `transport` label of the session metric (`websocket`, `sockjs_xhr_streaming`, …).
    public let transport: String
    let environment: StompEnvironment
    private let handshakeToken: String?
    private let mailbox = BurstMailbox<SessionDriver, Event>()
    private let budget: OutboundBudget
    private let inbound: InboundCredit
    let timers = ConnectionTimers(eventLoop: MultiThreadedEventLoopGroup.singleton.next())
    /// The heart-beat timer's period (ms): half the shortest agreed interval, at most 1 s.
    let tickMillis = Atomic<Int>(1000)
    /// ``checkingToken`` and ``clientClosed`` bits: a client that closes while its CONNECT's
    /// token is being checked cancels the check (see ``beginConnectCheck()``).
    private let connectCheck = Atomic<UInt8>(0)
    private static var checkingToken: UInt8 { 1 }
    private static var clientClosed: UInt8 { 2 }
    /// The end of the driver, for ``serve(inbound:outbound:bytes:)`` to wait for.
    private let ending = Mutex<(ended: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
    /// Ends the driver and closes the transport (a slow reader is cut off); cleared at the end,
    /// since it holds the connection and its transport.
    private let abort = Mutex<(@Sendable () -> Void)?>(nil)

    public init(id: String, handshakeToken: String?, environment: StompEnvironment, transport: String = "websocket") {
        self.id = id
        self.transport = transport
        self.handshakeToken = handshakeToken
        self.environment = environment
        self.budget = OutboundBudget(limit: environment.maxOutboundBytes, grace: environment.slowReaderGrace)
        self.inbound = InboundCredit(limit: environment.inboundLimit)
        environment.metrics.connectionObjects.increment()
    }

    deinit {
        environment.metrics.connectionObjects.decrement()
    }

    // MARK: NoticeSink

    public func push(_ notice: PushNotice) {
        let size = notice.payload.utf8.count + 256
        switch budget.admit(size, now: Self.uptimeNanos()) {
        case .refused:
            return
        case .cutOff:
            cutOff()
            return
        case .overLimit:
            // Checked by a timer, not by the driver, which may be blocked writing to this reader.
            timers.schedule(.slowReader, after: environment.slowReaderGrace + .milliseconds(1), in: self)
        case .queued:
            break
        }
        // The common case: the driver is idle and the transport takes the notice without
        // waiting, so it is written on this thread and no task is started per notice and session.
        if var driver = mailbox.takeIfIdle(where: \.canDeliverNow) {
            budget.release(size)
            let written = driver.deliverNow(notice)
            mailbox.giveBack(driver, appending: written ? nil : .inboundClosed, in: self)
        } else {
            post(.notice(notice, bytes: size))
        }
    }

    public func close(message: String, detail: String) {
        post(.close(message: message, detail: detail))
    }

    private func post(_ event: Event) {
        mailbox.post(event, in: self)
    }

    private func cutOff() {
        environment.logger.warning(
            "slow reader cut off",
            metadata: ["stomp.session": "\(id)", "stomp.queued_bytes": "\(budget.queuedBytes)"]
        )
        abort.withLock { $0 }?()
    }

    // MARK: Inbound

    /// Feeds bytes received from the client (in any split); `false` once more than four
    /// maximum-size frames wait to be decoded: the transport should stop reading until
    /// ``whenReadyToReceive(_:)`` calls back.
    public func receive(_ buffer: ByteBuffer) -> Bool {
        let ready = inbound.add(buffer.readableBytes)
        post(.bytes(buffer))
        return ready
    }

    /// Calls `action` once the driver has caught up with what ``receive(_:)`` handed it (or has ended).
    public func whenReadyToReceive(_ action: @escaping @Sendable () -> Void) {
        inbound.whenReady(action)
    }

    /// The client's side is closed. A CONNECT whose token is being checked is given up at once
    /// (the wait for the authorization server, or for a turn under its rate, is cancelled), so
    /// that a client gone before it was CONNECTED holds nothing, its turn least of all; what it
    /// sent after that CONNECT is dropped with it.
    public func inboundClosed() {
        let before = connectCheck.bitwiseOr(Self.clientClosed, ordering: .sequentiallyConsistent).oldValue
        if before & Self.checkingToken != 0 { mailbox.cancelBurst() }
        post(.inboundClosed)
    }

    /// Called by the driver before it checks a CONNECT's token: `false` if the client has
    /// closed already (then there is no one to check it for). Either this sees the close, or
    /// ``inboundClosed()`` sees the check and cancels it.
    func beginConnectCheck() -> Bool {
        connectCheck.bitwiseOr(Self.checkingToken, ordering: .sequentiallyConsistent).oldValue & Self.clientClosed == 0
    }

    func endConnectCheck() {
        connectCheck.bitwiseAnd(~Self.checkingToken, ordering: .sequentiallyConsistent)
    }

    // MARK: Driving

    /// Serves the connection until it closes: `inbound` is what the client sends (each element
    /// turned into bytes by `bytes`), `outbound` writes to it. Call once. The server's graceful
    /// shutdown closes the session with an ERROR frame.
    public func serve<Inbound: AsyncSequence>(
        inbound messages: Inbound,
        outbound: some StompOutbound,
        bytes: @escaping @Sendable (Inbound.Element) -> ByteBuffer
    ) async where Inbound: Sendable {
        start(outbound: outbound) {}
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withTaskGroup(of: Void.self) { group in
                    // The reader is a child task so that the driver's end stops it even when the
                    // client neither sends nor closes.
                    group.addTask {
                        do {
                            for try await element in messages {
                                if !self.receive(bytes(element)) { await self.inbound.waitUntilReady() }
                            }
                        } catch {}
                        self.inboundClosed()
                    }
                    await waitUntilEnded()
                    group.cancelAll()
                }
            } onCancel: {
                self.stopDriver()
            }
        } onGracefulShutdown: {
            self.close(message: "server shutting down", detail: "reconnect to another node")
        }
    }

    /// Serves the connection until it closes, for a transport that feeds ``receive(_:)`` and
    /// ``inboundClosed()`` itself (a channel handler), and returns at once. `abort` closes the
    /// transport when a slow reader is cut off. Call once.
    public func start(outbound: some StompOutbound, abort: @escaping @Sendable () -> Void) {
        self.abort.withLock {
            $0 = {
                self.stopDriver()
                abort()
            }
        }
        let driver = SessionDriver(connection: self, outbound: outbound, handshakeToken: handshakeToken)
        armConnectTimeout(after: environment.connectTimeout)
        mailbox.open(with: driver, in: self)
    }

    /// Ends the driver: the running burst is cancelled (a write blocked on the client gives up)
    /// and the connection is handled as closed by the client.
    private func stopDriver() {
        mailbox.cancelBurst()
        post(.inboundClosed)
    }

    /// A tick once `delay` has passed, for the driver to check the connect deadline (it arms
    /// the rest again if the tick came early).
    func armConnectTimeout(after delay: Duration) {
        timers.schedule(.connectTimeout, after: delay + .milliseconds(1), in: self)
    }

    /// Timers of a connected session: heart-beats if agreed, the token's expiry if it has one.
    func connected(heartBeat: HeartBeat.Agreement, expiresAtMillis: Int64?) {
        timers.cancel(.connectTimeout)
        let intervals = [heartBeat.serverSends, heartBeat.clientSends].filter { $0 > 0 }
        if let shortest = intervals.min() {
            let millis = min(1000, max(50, shortest / 2))
            tickMillis.store(millis, ordering: .relaxed)
            timers.repeatEvery(.milliseconds(millis), in: self)
        }
        scheduleExpiry(atUnixMillis: expiresAtMillis, warning: false)
    }

    /// The session's token expires at this time (`nil`: never), replacing the deadline of the
    /// token before (`SEND /app/session/token`); with `warning`, also the `token-expiring`
    /// warning a minute before. Only a session with an events subscription has anywhere to send
    /// the warning: the others keep one timer (a scheduled task is ~0.4 KiB per session).
    func scheduleExpiry(atUnixMillis expiresAtMillis: Int64?, warning: Bool) {
        guard let expiresAtMillis else {
            timers.cancel(.expiry)
            timers.cancel(.tokenExpiring)
            return
        }
        timers.schedule(.expiry, atUnixMillis: expiresAtMillis, in: self)
        guard warning else {
            timers.cancel(.tokenExpiring)
            return
        }
        let lead = environment.tokenExpiringLead.saturatedNanoseconds / 1_000_000
        timers.schedule(.tokenExpiring, atUnixMillis: expiresAtMillis.subtractingReportingOverflow(lead).partialValue, in: self)
    }

    // MARK: ConnectionTimersOwner

    func timerFired(_ slot: ConnectionTimers.Slot) {
        switch slot {
        case .connectTimeout, .expiry:
            post(.tick)
        case .tokenExpiring:
            post(.tokenExpiring)
        case .slowReader:
            if budget.isOverGrace(now: Self.uptimeNanos()), budget.cutOff() { cutOff() }
        }
    }

    func heartBeatDue() { post(.tick) }

    // MARK: BurstMailboxOwner

    /// Handles events until there are none left, then parks the state; or ends the connection.
    func runBurst() async {
        guard var driver = mailbox.beginBurst() else { return }
        while let event = mailbox.next(orPark: driver) {
            switch event {
            case .notice(_, let bytes): budget.release(bytes)
            case .bytes(let buffer): inbound.remove(buffer.readableBytes)
            default: break
            }
            guard !budget.isCutOff, !Task.isCancelled, await driver.handle(event), !Task.isCancelled else {
                await end(driver)
                return
            }
            // Counts after the last of a run of changes, not after each.
            if driver.countsDue, mailbox.waitingCount == 0 {
                guard await driver.sendCounts(subscriptionId: nil), !Task.isCancelled else {
                    await end(driver)
                    return
                }
            }
        }
    }

    private func end(_ driver: SessionDriver) async {
        mailbox.finish()
        inbound.finish()
        timers.stop()
        await driver.finish()
        abort.withLock { $0 = nil }
        let waiter = ending.withLock { state in
            state.ended = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    private func waitUntilEnded() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ended = ending.withLock { state in
                if !state.ended { state.waiter = continuation }
                return state.ended
            }
            if ended { continuation.resume() }
        }
    }

    private static func uptimeNanos() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
