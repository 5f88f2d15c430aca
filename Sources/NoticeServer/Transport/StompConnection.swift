import Foundation
import Logging
import NIOCore
import NIOPosix
import NoticeCore
import STOMP
import ServiceLifecycle
import Synchronization

/// What every STOMP connection shares: the hub, the token check, the store. A class: every
/// connection holds a reference, not a copy (it is a few hundred bytes).
final class StompEnvironment: Sendable {
    let hub: DeliveryHub
    let verifier: any TokenVerifier
    let store: any NoticeStore
    let recorder: DeliveryRecorder
    /// Binds this node's relay queue to the users connected here (several nodes only).
    let relay: ClusterRelay?
    let session: StompSession.Configuration
    let maxFrameBytes: Int
    /// Notices queued for one connection may exceed this only for ``slowReaderGrace``.
    let maxOutboundBytes: Int
    /// Most stored notices a SUBSCRIBE replays (`NOTICE_REPLAY_LIMIT`).
    let replayLimit: Int
    /// How long a connection may stay over ``maxOutboundBytes`` before it is cut off.
    let slowReaderGrace: Duration
    /// Over `maxOutboundBytes` times this, a connection is cut off at once (the memory bound).
    static let hardLimitFactor = 16
    let connectTimeout: Duration
    let metrics: ServiceMetrics
    let logger: Logger

    init(
        hub: DeliveryHub,
        verifier: any TokenVerifier,
        store: any NoticeStore,
        recorder: DeliveryRecorder,
        relay: ClusterRelay?,
        session: StompSession.Configuration,
        maxFrameBytes: Int,
        maxOutboundBytes: Int,
        replayLimit: Int,
        slowReaderGrace: Duration = .seconds(3),
        connectTimeout: Duration,
        metrics: ServiceMetrics,
        logger: Logger
    ) {
        self.hub = hub
        self.verifier = verifier
        self.store = store
        self.recorder = recorder
        self.relay = relay
        self.session = session
        self.maxFrameBytes = maxFrameBytes
        self.maxOutboundBytes = maxOutboundBytes
        self.replayLimit = replayLimit
        self.slowReaderGrace = slowReaderGrace
        self.connectTimeout = connectTimeout
        self.metrics = metrics
        self.logger = logger
    }
}

/// Writes encoded STOMP frames (UTF-8 text) to the browser as text messages; a transport (raw
/// WebSocket, SockJS) supplies it. Bytes, not `String`: the encoder makes bytes and the
/// WebSocket frame carries them, so the common path neither validates nor copies them again.
protocol StompOutbound: Sendable {
    func send(_ frame: [UInt8]) async throws
    func close() async
    /// Whether ``sendNow(_:)`` may be used: the transport takes more without waiting.
    var isReadyNow: Bool { get }
    /// Writes without waiting; `false` if the transport is closed. Only after ``isReadyNow``.
    func sendNow(_ frame: [UInt8]) -> Bool
}

extension StompOutbound {
    var isReadyNow: Bool { false }
    func sendNow(_ frame: [UInt8]) -> Bool { false }
}

/// One STOMP connection over any message transport: decodes client bytes, drives a
/// ``StompSession``, writes its frames, keeps heart-beats, and is a ``NoticeSink`` for the hub.
///
/// Everything that happens to the connection (client bytes, notices, timer ticks, the end)
/// is an event in its mailbox, handled in order by the driver: a task that runs only while
/// there are events (a burst) and parks the session state in the mailbox when they are done,
/// so an idle connection holds no task of ours. One burst at a time, so the state has one
/// owner. Timers (CONNECT timeout, heart-beats, token expiry, the slow-reader check) are NIO
/// scheduled tasks that post events. Inbound bytes waiting for the driver are bounded (the
/// transport stops reading, so TCP pushes back on a client that sends faster than it is
/// served). The outbound queue is bounded in bytes: a reader that stays more than
/// `maxOutboundBytes` behind for `slowReaderGrace`, or falls 16 times that behind at all, is
/// cut off (its notices stay stored). A burst a reader is draining is fine.
final class StompConnection: NoticeSink {
    enum Event: Sendable {
        case bytes(ByteBuffer)
        case notice(PushNotice, bytes: Int)
        case tick
        case inboundClosed
        case close(message: String, detail: String)
    }

    let id: String
    /// The `transport` label of the session metric (`websocket`, `sockjs_xhr_streaming`, …).
    let transport: String
    private let environment: StompEnvironment
    private let handshakeToken: String?
    private let mailbox = Mutex(Mailbox())
    /// The end of the driver, for ``serve(inbound:outbound:bytes:)`` to wait for.
    private let ending = Mutex<(ended: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
    private let queuedBytes = Atomic<Int>(0)
    private let inboundBytes = Atomic<Int>(0)
    /// The heart-beat timer's period (ms): half the shortest agreed interval, at most 1 s.
    private let tickMillis = Atomic<Int>(1000)
    private let overflowed = Atomic<Bool>(false)
    /// The driver has ended: inbound bytes are dropped, nothing waits for it.
    private let finished = Atomic<Bool>(false)
    /// Monotonic time (ns) at which the queue went over the limit; 0 while under it.
    private let overLimitSince = Atomic<Int64>(0)
    private let cancelDriver = Mutex<(@Sendable () -> Void)?>(nil)
    private let timers = Mutex(Timers())
    private let eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()

    private struct Timers {
        var connectTimeout: Scheduled<Void>?
        var expiry: Scheduled<Void>?
        var slowReader: Scheduled<Void>?
        var heartBeat: RepeatedTask?
        /// The driver has ended: no timer is set any more (each would hold the connection).
        var stopped = false

        mutating func cancelAll() {
            connectTimeout?.cancel()
            expiry?.cancel()
            slowReader?.cancel()
            heartBeat?.cancel()
            self = Timers()
            stopped = true
        }
    }

    init(id: String, handshakeToken: String?, environment: StompEnvironment, transport: String = "websocket") {
        self.id = id
        self.transport = transport
        self.handshakeToken = handshakeToken
        self.environment = environment
        environment.metrics.connectionObjects.increment()
    }

    deinit {
        environment.metrics.connectionObjects.decrement()
    }

    /// The driver's pending events and, between bursts, its state.
    private struct Mailbox {
        var events: [Event] = []
        var head = 0
        /// The session state while no burst runs (`nil` before the start and during a burst).
        var driver: Driver?
        /// The running burst, if any.
        var burst: Task<Void, Never>?
        var finished = false
    }

    /// Queues an event, starting a burst if none runs. Dropped once the driver has ended.
    private func post(_ event: Event) {
        mailbox.withLock { box in
            guard !box.finished else { return }
            box.events.append(event)
            startBurstIfNeeded(&box)
        }
    }

    /// Starts a burst if events wait, the state is parked (no burst or synchronous delivery
    /// holds it) and the driver has not ended. Called with the mailbox locked.
    private func startBurstIfNeeded(_ box: inout Mailbox) {
        guard box.burst == nil, box.driver != nil, !box.finished, box.head < box.events.count else { return }
        box.burst = Task.detached { await self.runBurst() }
    }

    // MARK: NoticeSink

    func push(_ notice: PushNotice) {
        guard !overflowed.load(ordering: .relaxed) else { return }
        let size = notice.payload.utf8.count + 256
        let queued = queuedBytes.wrappingAdd(size, ordering: .relaxed).newValue
        if queued > environment.maxOutboundBytes * StompEnvironment.hardLimitFactor {
            cutOff(queued: queued)
            return
        }
        if queued > environment.maxOutboundBytes,
            overLimitSince.compareExchange(expected: 0, desired: Self.uptimeNanos(), ordering: .relaxed).exchanged
        {
            // Checked by a timer, not by the driver, which may be blocked writing to this reader.
            let check = eventLoop.scheduleTask(in: .nanoseconds(Self.nanos(environment.slowReaderGrace) + 1_000_000)) {
                self.checkSlowReader()
            }
            timers.withLock {
                $0.slowReader?.cancel()
                if $0.stopped { check.cancel() } else { $0.slowReader = check }
            }
        }
        guard !deliverNow(notice, bytes: size) else { return }
        post(.notice(notice, bytes: size))
    }

    /// Delivers a notice on the caller's thread when the driver is idle and the transport takes
    /// it without waiting (the common case: no task is started per notice and session); `false`
    /// when it must go through the mailbox.
    private func deliverNow(_ notice: PushNotice, bytes: Int) -> Bool {
        guard
            var driver = mailbox.withLock({ box -> Driver? in
                guard !box.finished, box.burst == nil, box.head == box.events.count, let driver = box.driver, driver.canDeliverNow else { return nil }
                box.driver = nil  // taken: events posted meanwhile queue up, and start a burst below
                return driver
            })
        else { return false }
        dequeued(bytes)
        let delivered = driver.deliverNow(notice)
        mailbox.withLock { box in
            box.driver = driver
            if !delivered { box.events.append(.inboundClosed) }
            startBurstIfNeeded(&box)
        }
        return true
    }

    /// Called by the driver when it has taken a notice off the queue.
    private func dequeued(_ bytes: Int) {
        if queuedBytes.wrappingSubtract(bytes, ordering: .relaxed).newValue <= environment.maxOutboundBytes {
            overLimitSince.store(0, ordering: .relaxed)
        }
    }

    /// Cuts the connection off if it has stayed over the outbound limit for the grace period.
    private func checkSlowReader() {
        let since = overLimitSince.load(ordering: .relaxed)
        guard since != 0, Self.uptimeNanos() - since >= Self.nanos(environment.slowReaderGrace) else { return }
        cutOff(queued: queuedBytes.load(ordering: .relaxed))
    }

    private func cutOff(queued: Int) {
        guard !overflowed.exchange(true, ordering: .relaxed) else { return }
        environment.logger.warning("slow reader cut off", metadata: ["stomp.session": "\(id)", "stomp.queued_bytes": "\(queued)"])
        cancelDriver.withLock { $0 }?()
    }

    private static func uptimeNanos() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// `duration` in nanoseconds, saturating at `Int64.max` (about 292 years).
    static func nanos(_ duration: Duration) -> Int64 {
        let (seconds, overflow) = duration.components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return duration < .zero ? .min : .max }
        return seconds.addingReportingOverflow(duration.components.attoseconds / 1_000_000_000).overflow
            ? .max : seconds + duration.components.attoseconds / 1_000_000_000
    }

    private static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func close(message: String, detail: String) {
        post(.close(message: message, detail: detail))
    }

    // MARK: Timers

    /// A `.tick` after `delay` (replacing the previous one of the same kind).
    private func tick(after delay: Duration, _ slot: WritableKeyPath<Timers, Scheduled<Void>?>) {
        let scheduled = eventLoop.scheduleTask(in: .nanoseconds(Self.nanos(delay))) { self.post(.tick) }
        set(scheduled, slot)
    }

    /// Keeps `scheduled` in `slot`, cancelling what was there; cancels it instead once stopped.
    private func set(_ scheduled: Scheduled<Void>, _ slot: WritableKeyPath<Timers, Scheduled<Void>?>) {
        timers.withLock {
            $0[keyPath: slot]?.cancel()
            if $0.stopped { scheduled.cancel() } else { $0[keyPath: slot] = scheduled }
        }
    }

    /// A `.tick` once the token has expired (at `expiresAt`, Unix ms), in steps of at most a
    /// day: a token valid for centuries needs no timer that far ahead.
    private func armExpiry(atMillis expiresAt: Int64) {
        let remaining = max(0, expiresAt - Self.nowMillis()) + 1
        let step = min(remaining, 86_400_000)
        let scheduled = eventLoop.scheduleTask(in: .milliseconds(step)) {
            if step == remaining { self.post(.tick) } else { self.armExpiry(atMillis: expiresAt) }
        }
        set(scheduled, \.expiry)
    }

    /// A `.tick` every `millis` while the session lives (`nil`: none).
    private func tickRepeatedly(everyMillis millis: Int?) {
        let repeated = millis.map { millis in
            eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(Int64(millis)), delay: .milliseconds(Int64(millis))) { _ in
                self.post(.tick)
            }
        }
        timers.withLock {
            $0.heartBeat?.cancel()
            if $0.stopped { repeated?.cancel() } else { $0.heartBeat = repeated }
        }
    }

    /// Timers of a connected session: heart-beats if agreed, the token's expiry if it has one.
    fileprivate func connected(heartBeat: HeartBeat.Agreement, expiresAtMillis: Int64?) {
        timers.withLock { $0.connectTimeout?.cancel() }
        let intervals = [heartBeat.serverSends, heartBeat.clientSends].filter { $0 > 0 }
        if let shortest = intervals.min() {
            let millis = min(1000, max(50, shortest / 2))
            tickMillis.store(millis, ordering: .relaxed)
            tickRepeatedly(everyMillis: millis)
        }
        if let expiresAtMillis { armExpiry(atMillis: expiresAtMillis) }
    }

    // MARK: Driving

    /// Serves the connection until it closes: `inbound` is what the client sends (each element
    /// turned into bytes by `bytes`), `outbound` writes to it. Call once. The server's graceful
    /// shutdown closes the session with an ERROR frame.
    func serve<Inbound: AsyncSequence>(
        inbound: Inbound,
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
                            for try await element in inbound { await self.received(bytes(element)) }
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
    func start(outbound: some StompOutbound, abort: @escaping @Sendable () -> Void) {
        cancelDriver.withLock {
            $0 = {
                self.stopDriver()
                abort()
            }
        }
        tick(after: environment.connectTimeout + .milliseconds(1), \.connectTimeout)
        mailbox.withLock { box in
            box.driver = Driver(connection: self, environment: environment, outbound: outbound, handshakeToken: handshakeToken)
            // Events may have come before the start (the client is quick).
            startBurstIfNeeded(&box)
        }
    }

    /// Ends the driver: the running burst is cancelled (a write blocked on the client gives up)
    /// and the connection is handled as closed by the client.
    private func stopDriver() {
        mailbox.withLock { $0.burst }?.cancel()
        post(.inboundClosed)
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

    /// Feeds bytes received from the client (in any split); `false` once more than four
    /// maximum-size frames wait to be decoded: the transport should stop reading until
    /// ``isReadyToReceive``.
    func receive(_ buffer: ByteBuffer) -> Bool {
        guard !finished.load(ordering: .relaxed) else { return true }
        let waiting = inboundBytes.wrappingAdd(buffer.readableBytes, ordering: .relaxed).newValue
        post(.bytes(buffer))
        return waiting <= 4 * environment.maxFrameBytes
    }

    /// Whether the driver has caught up with what ``receive(_:)`` handed it (or has ended).
    var isReadyToReceive: Bool {
        finished.load(ordering: .relaxed) || inboundBytes.load(ordering: .relaxed) <= 4 * environment.maxFrameBytes
    }

    /// ``receive(_:)`` for a task that reads: waits while the driver is behind.
    func received(_ buffer: ByteBuffer) async {
        guard !receive(buffer) else { return }
        while !isReadyToReceive, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The client's side is closed.
    func inboundClosed() { post(.inboundClosed) }

    /// Handles events until there are none left, then parks the state; or ends the connection.
    private func runBurst() async {
        guard
            var driver = mailbox.withLock({ box in
                defer { box.driver = nil }
                return box.driver
            })
        else { return }
        while true {
            let next: Event? = mailbox.withLock { box in
                guard box.head < box.events.count else {
                    // Done for now: the state waits in the mailbox, the queue's memory is freed.
                    box.events = []
                    box.head = 0
                    box.driver = driver
                    box.burst = nil
                    return nil
                }
                let event = box.events[box.head]
                box.head += 1
                if box.head >= 1024, box.head * 2 >= box.events.count {
                    // A long burst: drop what was handled instead of keeping it until the end.
                    box.events.removeFirst(box.head)
                    box.head = 0
                }
                return event
            }
            guard let event = next else { return }
            switch event {
            case .notice(_, let bytes): dequeued(bytes)
            case .bytes(let buffer): inboundBytes.wrappingSubtract(buffer.readableBytes, ordering: .relaxed)
            default: break
            }
            guard !overflowed.load(ordering: .relaxed), !Task.isCancelled, await driver.handle(event), !Task.isCancelled else { break }
        }
        finished.store(true, ordering: .relaxed)
        mailbox.withLock { box in
            box.finished = true
            box.events = []
            box.head = 0
        }
        timers.withLock { $0.cancelAll() }
        await driver.finish()
        // The closure holds this connection and its transport: kept, neither would ever be freed.
        cancelDriver.withLock { $0 = nil }
        mailbox.withLock { $0.burst = nil }
        let waiter = ending.withLock { state in
            state.ended = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The connection's state, owned by one burst at a time.
    private struct Driver {
        let connection: StompConnection
        let environment: StompEnvironment
        let outbound: any StompOutbound
        var session: StompSession
        var decoder: StompDecoder
        var registeredUser: String?
        let openedAt = ContinuousClock.now
        var lastReceived = ContinuousClock.now
        var lastSent = ContinuousClock.now

        init(connection: StompConnection, environment: StompEnvironment, outbound: any StompOutbound, handshakeToken: String?) {
            self.connection = connection
            self.environment = environment
            self.outbound = outbound
            self.session = StompSession(sessionId: connection.id, handshakeToken: handshakeToken, configuration: environment.session)
            self.decoder = StompDecoder(limits: .init(maxFrameBytes: environment.maxFrameBytes, maxHeaders: 64))
        }

        /// The connection's logger: its session id and, once connected, its user. Built when
        /// logging, so that an idle connection holds no metadata dictionary.
        var logger: Logger {
            var logger = environment.logger
            logger[metadataKey: "stomp.session"] = "\(connection.id)"
            if let registeredUser { logger[metadataKey: "user.id"] = "\(registeredUser)" }
            return logger
        }

        /// Handles one event; `false` when the connection is done.
        mutating func handle(_ event: StompConnection.Event) async -> Bool {
            switch event {
            case .bytes(let buffer):
                lastReceived = .now
                decoder.append(buffer.readableBytesView)
                while session.state != .closed {
                    let output: StompDecoder.Output?
                    do {
                        output = try decoder.next()
                    } catch {
                        let message = error.isLimit ? "frame too large" : "syntax error"
                        return await perform(session.fail(message, detail: error.description))
                    }
                    guard let output else { break }
                    guard case .frame(let frame) = output else { continue }
                    let subscriptions = session.subscriptions.count
                    guard await perform(session.receive(frame)) else { return false }
                    if session.subscriptions.count != subscriptions, frame.command == .subscribe || frame.command == .unsubscribe {
                        logger.info(
                            frame.command == .subscribe ? "stomp subscribed" : "stomp unsubscribed",
                            metadata: [
                                "stomp.subscription": "\(frame.headers["id"] ?? "")", "stomp.destination": "\(frame.headers["destination"] ?? "")",
                            ]
                        )
                    }
                }
                return session.state != .closed
            case .notice(let notice, _):
                let delivery = session.messages(for: notice)
                for frame in delivery.frames {
                    guard await write(frame) else { return false }
                    pushed(notice)
                }
                if !notice.isBroadcast, delivery.deliveredOnWrite { environment.recorder.record(notice.key) }
                return true
            case .tick:
                return await tick()
            case .inboundClosed:
                return false
            case .close(let message, let detail):
                _ = await perform(session.fail(message, detail: detail))
                return false
            }
        }

        private mutating func tick() async -> Bool {
            let now = ContinuousClock.now
            switch session.state {
            case .awaitingConnect, .authenticating:
                if now - openedAt > environment.connectTimeout {
                    return await perform(session.fail("connect timeout", detail: "no CONNECT frame within \(environment.connectTimeout)"))
                }
            case .connected:
                if let expiresAt = session.principal?.expiresAtMillis, StompConnection.nowMillis() >= expiresAt {
                    logger.info("token expired: closing the session")
                    return await perform(session.fail("token expired", detail: "the access token has expired; reconnect with a new one"))
                }
                let agreement = session.heartBeat
                if agreement.clientSends > 0, now - lastReceived > .milliseconds(agreement.clientSends * 2) {
                    return await perform(session.fail("heart-beat timeout", detail: "nothing received for more than twice the heart-beat interval"))
                }
                let tick = Duration.milliseconds(connection.tickMillis.load(ordering: .relaxed))
                if agreement.serverSends > 0, now - lastSent >= .milliseconds(agreement.serverSends) - tick {
                    do {
                        try await outbound.send([UInt8(ascii: "\n")])
                        lastSent = now
                    } catch {
                        return false
                    }
                }
            case .closed:
                return false
            }
            return true
        }

        /// Carries out session actions; `false` when the connection must close.
        private mutating func perform(_ actions: [StompSession.Action]) async -> Bool {
            for action in actions {
                switch action {
                case .send(let frame):
                    guard await write(frame) else { return false }
                case .close:
                    return false
                case .authenticate(let token):
                    let principal: Principal?
                    if let token { principal = await environment.verifier.verify(token: token) } else { principal = nil }
                    guard let principal else {
                        logger.info("connect refused: token not accepted")
                        guard await perform(session.authenticationFailed()) else { return false }
                        continue
                    }
                    guard environment.hub.register(connection, userId: principal.userId) else {
                        logger.info("connect refused: session limit", metadata: ["user.id": "\(principal.userId)"])
                        guard
                            await perform(
                                session.fail("too many sessions", detail: "at most \(environment.hub.maxSessionsPerUser) sessions per user")
                            )
                        else { return false }
                        continue
                    }
                    registeredUser = principal.userId
                    // Before CONNECTED: from here on, notices stored on any node reach this session.
                    await environment.relay?.acquire(principal.userId)
                    environment.metrics.sessions(transport: connection.transport).increment()
                    guard await perform(session.authenticated(principal)) else { return false }
                    decoder.version = session.version
                    connection.connected(heartBeat: session.heartBeat, expiresAtMillis: principal.expiresAtMillis)
                    logger.info("stomp connected", metadata: ["stomp.version": "\(session.version.rawValue)"])
                case .markDelivered(let keys):
                    for key in keys { environment.recorder.record(key) }
                case .replay(let subscriptionId):
                    guard await replay(subscriptionId: subscriptionId) else { return false }
                case .markRead(let noticeId):
                    guard let user = session.principal?.userId else { continue }
                    do {
                        _ = try await environment.store.markRead(noticeId: noticeId, userId: user, at: Int64(Date().timeIntervalSince1970 * 1000))
                    } catch {
                        logger.warning("could not mark notice read", metadata: ["notice.id": "\(noticeId)", "error": "\(error)"])
                    }
                }
            }
            return session.state != .closed
        }

        /// Sends the user's stored, undelivered notices on a new subscription, before any live
        /// one: live notices wait in the event stream meanwhile, and the session skips the live
        /// copy of anything replayed, so there is neither a gap nor a duplicate.
        private mutating func replay(subscriptionId: String) async -> Bool {
            guard let userId = session.principal?.userId, environment.replayLimit > 0 else { return true }
            let rows: [NoticeRow]
            do {
                rows = try await environment.store.undelivered(userId: userId, limit: environment.replayLimit)
            } catch {
                // Closing while the query ran (the client left, the server stops): not a store problem.
                if Task.isCancelled || error is CancellationError { return false }
                // The notices stay stored and undelivered: the next SUBSCRIBE replays them.
                logger.warning("replay skipped: the store is unavailable", metadata: ["error": "\(error)"])
                return true
            }
            let notices = rows.map { PushNotice(key: $0.key, payload: $0.payload) }
            let delivery = session.replay(notices, subscriptionId: subscriptionId)
            for frame in delivery.frames {
                guard await write(frame) else { return false }
                environment.metrics.replayed.increment()
            }
            if delivery.deliveredOnWrite {
                for notice in notices { environment.recorder.record(notice.key) }
            }
            if !delivery.frames.isEmpty {
                logger.debug(
                    "replayed stored notices",
                    metadata: ["stomp.subscription": "\(subscriptionId)", "notice.count": "\(delivery.frames.count)"]
                )
            }
            return true
        }

        /// Whether a notice can be delivered without suspending: connected, and the transport
        /// takes more now.
        var canDeliverNow: Bool { session.state == .connected && outbound.isReadyNow }

        /// ``handle(_:)`` of a notice, without suspending (after ``canDeliverNow``); `false`
        /// when the transport turned out closed.
        mutating func deliverNow(_ notice: PushNotice) -> Bool {
            let delivery = session.messages(for: notice)
            for frame in delivery.frames {
                guard outbound.sendNow(StompEncoder.encode(frame, version: session.version)) else { return false }
                lastSent = .now
                pushed(notice)
            }
            if !notice.isBroadcast, delivery.deliveredOnWrite { environment.recorder.record(notice.key) }
            return true
        }

        private func pushed(_ notice: PushNotice) {
            environment.metrics.pushed.increment()
            let latency = ContinuousClock.now - notice.consumedAt
            environment.metrics.pushLatency.recordNanoseconds(
                latency.components.seconds * 1_000_000_000 + latency.components.attoseconds / 1_000_000_000
            )
        }

        private mutating func write(_ frame: StompFrame) async -> Bool {
            let bytes = StompEncoder.encode(frame, version: session.version)
            do {
                try await outbound.send(bytes)
                lastSent = .now
                return true
            } catch {
                return false
            }
        }

        func finish() async {
            if let registeredUser {
                environment.hub.unregister(connection, userId: registeredUser)
                environment.relay?.release(registeredUser)
                environment.metrics.sessions(transport: connection.transport).decrement()
                logger.info("stomp disconnected")
            }
            await outbound.close()
        }
    }
}
