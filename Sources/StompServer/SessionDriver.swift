import CoreMetrics
import Foundation
import Logging
import NIOCore
import NoticeCore
import STOMP
import Synchronization

/// One connection's state and what it does with each event: decodes client bytes, runs the
/// ``StompSession``, carries out its actions and writes its frames. Owned by one burst of the
/// connection's mailbox at a time.
struct SessionDriver: Sendable {
    let connection: StompConnection
    let outbound: any StompOutbound
    var session: StompSession
    var decoder: StompDecoder
    var registeredUser: String?
    let openedAt = ContinuousClock.now
    var lastReceived = ContinuousClock.now
    var lastSent = ContinuousClock.now
    /// The user's counts changed (an inbox event, a new notice) and an events subscription
    /// should hear: sent once the mailbox is empty, so a burst of changes costs one query.
    var countsDue = false
    /// When the last token refresh finished: each asks the authorization server, so a session
    /// may refresh at most once per ``minimumRefreshInterval``.
    var lastRefresh: ContinuousClock.Instant?
    static let minimumRefreshInterval = Duration.seconds(10)

    var environment: StompEnvironment { connection.environment }

    init(connection: StompConnection, outbound: any StompOutbound, handshakeToken: String?) {
        self.connection = connection
        self.outbound = outbound
        let environment = connection.environment
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
            return await receive(buffer)
        case .notice(let notice, _):
            return await deliver(notice)
        case .tick:
            return await tick()
        case .tokenExpiring:
            return await sendTokenExpiring(subscriptionId: nil)
        case .inboundClosed:
            return false
        case .close(let message, let detail):
            _ = await perform(session.fail(message, detail: detail))
            return false
        }
    }

    private mutating func receive(_ buffer: ByteBuffer) async -> Bool {
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
                        "stomp.subscription": "\(frame.headers["id"] ?? "")",
                        "stomp.destination": "\(frame.headers["destination"] ?? "")",
                    ]
                )
            }
        }
        return session.state != .closed
    }

    private mutating func tick() async -> Bool {
        let now = ContinuousClock.now
        switch session.state {
        case .awaitingConnect, .authenticating:
            let waited = now - openedAt
            if waited > environment.connectTimeout {
                return await perform(session.fail("connect timeout", detail: "no CONNECT frame within \(environment.connectTimeout)"))
            }
            // Early (the timer and `openedAt` are two readings of the clock): wait for the rest.
            connection.armConnectTimeout(after: environment.connectTimeout - waited)
        case .connected:
            if let expiresAt = session.principal?.expiresAtMillis, ConnectionTimers.nowMillis() >= expiresAt {
                logger.info("token expired: closing the session")
                return await perform(session.fail("token expired", detail: "the access token has expired; reconnect with a new one"))
            }
            let agreement = session.heartBeat
            if agreement.clientSends > 0, now - lastReceived > .milliseconds(agreement.clientSends * 2) {
                return await perform(
                    session.fail("heart-beat timeout", detail: "nothing received for more than twice the heart-beat interval")
                )
            }
            let tick = Duration.milliseconds(connection.tickMillis.load(ordering: .relaxed))
            if agreement.serverSends > 0, now - lastSent >= .milliseconds(agreement.serverSends) - tick {
                guard await write([UInt8(ascii: "\n")]) else { return false }
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
                guard await write(StompEncoder.encode(frame, version: session.version)) else { return false }
            case .close:
                return false
            case .authenticate(let token):
                guard await authenticate(token) else { return false }
            case .markDelivered(let keys):
                environment.marks.record(keys)
            case .replay(let subscriptionId):
                guard await replay(subscriptionId: subscriptionId) else { return false }
            case .changeInbox(let command, let receipt):
                guard await changeInbox(command, receipt: receipt) else { return false }
            case .sendCounts(let subscriptionId):
                guard await sendCounts(subscriptionId: subscriptionId) else { return false }
                if session.tokenExpiringDue {
                    // An events subscription made after the warning still gets it.
                    guard await sendTokenExpiring(subscriptionId: subscriptionId) else { return false }
                } else if let expiresAt = session.principal?.expiresAtMillis {
                    // The first place to send the warning to: arm it (at once if it is due).
                    connection.scheduleExpiry(atUnixMillis: expiresAt, warning: true)
                }
            case .refreshToken(let token):
                guard await refreshToken(token) else { return false }
            }
        }
        return session.state != .closed
    }

    private mutating func authenticate(_ token: String?) async -> Bool {
        var principal: Principal?
        if let token {
            guard connection.beginConnectCheck() else { return false }
            principal = await environment.verifier.verify(token: token)
            connection.endConnectCheck()
            // The client closed while its token was checked: nothing to connect.
            guard !Task.isCancelled else {
                logger.debug("client closed during its CONNECT's token check")
                return false
            }
        }
        guard let principal else {
            logger.info("connect refused: token not accepted")
            return await perform(session.authenticationFailed())
        }
        guard environment.hub.register(connection, userId: principal.userId) else {
            logger.info("connect refused: session limit", metadata: ["user.id": "\(principal.userId)"])
            let limit = environment.hub.maxSessionsPerUser
            return await perform(session.fail("too many sessions", detail: "at most \(limit) sessions per user"))
        }
        registeredUser = principal.userId
        // Before CONNECTED: from here on, notices stored on any node reach this session.
        await environment.presence?.acquire(principal.userId)
        environment.metrics.sessions(transport: connection.transport).increment()
        guard await perform(session.authenticated(principal)) else { return false }
        decoder.version = session.version
        connection.connected(heartBeat: session.heartBeat, expiresAtMillis: principal.expiresAtMillis)
        logger.info("stomp connected", metadata: ["stomp.version": "\(session.version.rawValue)"])
        return true
    }

    /// Writes `token-expiring` on the events subscriptions (or one).
    private mutating func sendTokenExpiring(subscriptionId: String?) async -> Bool {
        for frame in session.tokenExpiring(subscriptionId: subscriptionId) {
            guard await write(StompEncoder.encode(frame, version: session.version)) else { return false }
        }
        return true
    }

    /// Checks a token sent on the open session; the session goes on under it (a later expiry,
    /// new scopes) or ends as a refused CONNECT does. Before the frame's RECEIPT, if any.
    private mutating func refreshToken(_ token: String) async -> Bool {
        if let lastRefresh, ContinuousClock.now - lastRefresh < Self.minimumRefreshInterval {
            return await perform(session.fail("too many token refreshes", detail: "at most one per \(Self.minimumRefreshInterval)"))
        }
        defer { lastRefresh = .now }
        guard let principal = await environment.verifier.verify(token: token) else {
            logger.info("token refresh refused: token not accepted")
            return await perform(session.authenticationFailed())
        }
        guard await perform(session.tokenRefreshed(principal)) else { return false }
        connection.scheduleExpiry(atUnixMillis: principal.expiresAtMillis, warning: session.hasEventsSubscription)
        logger.info("token refreshed")
        return true
    }

    /// Applies the change before the frame's RECEIPT (if any) is written: a receipt means stored.
    /// `false` when the session must close: an `upTo` that names no notice of the user (as for a
    /// malformed command), or a store failure when the client asked for a receipt.
    private mutating func changeInbox(_ command: InboxCommand, receipt: String?) async -> Bool {
        guard let user = session.principal?.userId else { return true }
        do {
            _ = try await environment.inbox.apply(command, userId: user, at: Int64(Date().timeIntervalSince1970 * 1000))
            return true
        } catch NoticeStoreError.unknownCursor {
            return await perform(session.fail("invalid body", detail: "upTo: no such notice", receipt: receipt))
        } catch {
            logger.warning("could not change inbox state", metadata: ["inbox.action": "\(command.action.rawValue)", "error": "\(error)"])
            guard let failed = session.inboxChangeFailed("the store is unavailable", receipt: receipt) else { return true }
            return await perform(failed)
        }
    }

    /// Unregisters the session and closes the transport.
    func finish() async {
        if let registeredUser {
            environment.hub.unregister(connection, userId: registeredUser)
            environment.presence?.release(registeredUser)
            environment.metrics.sessions(transport: connection.transport).decrement()
            logger.info("stomp disconnected")
        }
        await outbound.close()
    }
}
