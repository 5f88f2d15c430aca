import CoreMetrics
import Logging
import NoticeCore
import STOMP

/// Notices to the client: live ones, written by the driver or at once on the pushing thread,
/// and the replay of stored ones on SUBSCRIBE.
extension SessionDriver {
    /// A live notice on this session: its encoded MESSAGE frames, one per subscription that
    /// takes it, and whether writing them delivers it.
    struct Outgoing {
        let notice: PushNotice
        let frames: [[UInt8]]
        /// The notice is the user's own and an `ack:auto` subscription takes it (SPEC §4).
        let marksDelivered: Bool
    }

    /// The one place a live notice becomes frames; ``delivered(_:)`` is the one place after them.
    private mutating func outgoing(_ notice: PushNotice) -> Outgoing {
        let delivery = session.messages(for: notice)
        return Outgoing(
            notice: notice,
            frames: delivery.frames.map { StompEncoder.encode($0, version: session.version) },
            marksDelivered: delivery.deliveredOnWrite
        )
    }

    /// After every frame of `outgoing` was written.
    private mutating func delivered(_ outgoing: Outgoing) {
        if outgoing.marksDelivered { environment.marks.record(session.deliveryKey(of: outgoing.notice)) }
        // An inbox event, a new notice of the user's own or a new announcement: the counts moved.
        let notice = outgoing.notice
        if session.hasEventsSubscription, notice.kind == .inbox || notice.isBroadcast || notice.key.recipient == session.principal?.userId {
            countsDue = true
        }
    }

    /// Writes a live notice, waiting for the transport if it must.
    mutating func deliver(_ notice: PushNotice) async -> Bool {
        let outgoing = outgoing(notice)
        for frame in outgoing.frames {
            guard await write(frame) else { return false }
            if notice.kind == .notice { pushed(notice) }
        }
        delivered(outgoing)
        return true
    }

    /// Whether a notice can be delivered without suspending: connected, the transport takes
    /// more now, and no events subscription would want counts read from the store after it.
    var canDeliverNow: Bool { session.state == .connected && outbound.isReadyNow && !session.hasEventsSubscription }

    /// ``deliver(_:)`` without suspending (after ``canDeliverNow``); `false` when the transport
    /// turned out closed.
    mutating func deliverNow(_ notice: PushNotice) -> Bool {
        let outgoing = outgoing(notice)
        for frame in outgoing.frames {
            guard outbound.sendNow(frame) else { return false }
            lastSent = .now
            if notice.kind == .notice { pushed(notice) }
        }
        delivered(outgoing)
        return true
    }

    /// Sends the user's stored, undelivered notices on a new subscription, before any live
    /// one: live notices wait in the mailbox meanwhile, and the session skips the live copy of
    /// anything replayed, so there is neither a gap nor a duplicate.
    mutating func replay(subscriptionId: String) async -> Bool {
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
            guard await write(StompEncoder.encode(frame, version: session.version)) else { return false }
            environment.metrics.replayed.increment()
        }
        if delivery.deliveredOnWrite {
            environment.marks.record(notices.map { session.deliveryKey(of: $0) })
        }
        if !delivery.frames.isEmpty {
            logger.debug(
                "replayed stored notices",
                metadata: ["stomp.subscription": "\(subscriptionId)", "notice.count": "\(delivery.frames.count)"]
            )
        }
        return true
    }

    /// Reads the user's counts and sends them on one events subscription, or every one
    /// (`nil`); `false` once the transport is closed. A store that is down skips them (logged):
    /// the next change sends them again.
    mutating func sendCounts(subscriptionId: String?) async -> Bool {
        countsDue = false
        guard let userId = session.principal?.userId else { return true }
        let counts: NoticeCounts
        do {
            counts = try await environment.store.counts(userId: userId, category: nil, cap: NoticeCounts.defaultCap)
        } catch {
            if Task.isCancelled || error is CancellationError { return false }
            logger.warning("counts skipped: the store is unavailable", metadata: ["error": "\(error)"])
            return true
        }
        for frame in session.counts(counts, subscriptionId: subscriptionId) {
            guard await write(StompEncoder.encode(frame, version: session.version)) else { return false }
        }
        return true
    }

    private func pushed(_ notice: PushNotice) {
        environment.metrics.pushed.increment()
        let latency = ContinuousClock.now - notice.consumedAt
        environment.metrics.pushLatency.recordNanoseconds(latency.saturatedNanoseconds)
    }

    /// Writes encoded bytes, waiting while the transport is full; `false` once it is closed.
    mutating func write(_ bytes: [UInt8]) async -> Bool {
        do {
            try await outbound.send(bytes)
            lastSent = .now
            return true
        } catch {
            return false
        }
    }
}
