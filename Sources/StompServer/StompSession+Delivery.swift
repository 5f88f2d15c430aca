public import NoticeCore
public import STOMP

/// Live notices and the replay on SUBSCRIBE: MESSAGE frames and the unacknowledged list.
extension StompSession {
    /// What a live notice becomes on this connection.
    public struct Delivery: Sendable, Hashable {
        /// MESSAGE frames, one per subscription that takes the notice.
        public var frames: [StompFrame]
        /// Whether writing them delivers the notice (SPEC §4): an `ack:auto` subscription took
        /// it. In client ack modes only an ACK does.
        public var deliveredOnWrite: Bool
    }

    /// MESSAGE frames for a live notice, one per subscription that takes it (a subscription
    /// that already had it by replay skips it).
    public mutating func messages(for notice: PushNotice) -> Delivery {
        guard state == .connected, let principal else { return Delivery(frames: [], deliveredOnWrite: false) }
        var delivery = Delivery(frames: [], deliveredOnWrite: false)
        for index in subscriptions.indices where Self.takes(subscriptions[index].feed, notice, userId: principal.userId) {
            if subscriptions[index].replayed.remove(notice.key) != nil { continue }
            delivery.frames.append(message(notice, on: subscriptions[index]))
            if subscriptions[index].ackMode == .auto, notice.kind == .notice { delivery.deliveredOnWrite = true }
        }
        return delivery
    }

    /// The replay for a SUBSCRIBE (``Action/replay(subscriptionId:)``): MESSAGE frames for the
    /// user's stored, undelivered notices, oldest first. Their live copies, if still on their
    /// way, will not be sent again on that subscription.
    public mutating func replay(_ notices: [PushNotice], subscriptionId: String) -> Delivery {
        guard state == .connected, let principal, let index = subscriptions.firstIndex(where: { $0.id == subscriptionId }) else {
            return Delivery(frames: [], deliveredOnWrite: false)
        }
        var delivery = Delivery(frames: [], deliveredOnWrite: subscriptions[index].ackMode == .auto)
        for notice in notices where Self.takes(subscriptions[index].feed, notice, userId: principal.userId) {
            guard subscriptions[index].replayed.insert(notice.key).inserted else { continue }
            delivery.frames.append(message(notice, on: subscriptions[index]))
        }
        return delivery
    }

    /// Whether the session has a subscription to the events destination.
    public var hasEventsSubscription: Bool { subscriptions.contains { $0.feed == .events } }

    /// MESSAGE frames with the user's counts (``NoticeCounts/json(category:type:)``, type
    /// `counts`) for one events subscription, or every one (`nil`).
    public mutating func counts(_ counts: NoticeCounts, subscriptionId: String?) -> [StompFrame] {
        guard state == .connected, let userId = principal?.userId else { return [] }
        let event = PushNotice.inboxEvent(counts.json(type: "counts"), for: userId)
        return subscriptions.indices
            .filter { subscriptions[$0].feed == .events && (subscriptionId == nil || subscriptions[$0].id == subscriptionId) }
            .map { message(event, on: subscriptions[$0]) }
    }

    /// MESSAGE frames `{"type":"token-expiring","expiresAt":"…"}` for one events subscription
    /// or every one (`nil`), once the token expires within the warning's lead; the session
    /// remembers it for events subscriptions made later.
    public mutating func tokenExpiring(subscriptionId: String?) -> [StompFrame] {
        guard state == .connected, let principal, let expiresAt = principal.expiresAtMillis else { return [] }
        tokenExpiringDue = true
        let event = PushNotice.inboxEvent(
            .object(JSONObject([("type", .string("token-expiring")), ("expiresAt", .string(NoticeTimestamp.rfc3339(millis: expiresAt)))])),
            for: principal.userId
        )
        return subscriptions.indices
            .filter { subscriptions[$0].feed == .events && (subscriptionId == nil || subscriptions[$0].id == subscriptionId) }
            .map { message(event, on: subscriptions[$0]) }
    }

    private mutating func message(_ notice: PushNotice, on subscription: Subscription) -> StompFrame {
        messageCounter += 1
        guard notice.kind == .notice else {
            // An event: nothing to deliver or acknowledge (an ACK of it settles nothing).
            let messageId = "event-\(sessionId)-\(messageCounter)"
            var headers: StompHeaders = [
                "destination": subscription.destination,
                "subscription": subscription.id,
                "message-id": messageId,
                "content-type": "application/json;charset=UTF-8",
            ]
            if subscription.ackMode != .auto, version == .v1_2 { headers.add("ack", messageId) }
            return StompFrame(.message, headers: headers, body: Array(notice.payload.utf8)).withContentLength()
        }
        let messageId = "\(notice.key.noticeId)-\(sessionId)-\(messageCounter)"
        var headers: StompHeaders = [
            "destination": subscription.destination,
            "subscription": subscription.id,
            "message-id": messageId,
            "notice-id": String(notice.key.noticeId),
            "content-type": "application/json;charset=UTF-8",
        ]
        if subscription.ackMode != .auto {
            if version == .v1_2 { headers.add("ack", messageId) }
            if unacknowledged.count >= configuration.maxUnacknowledged { unacknowledged.removeFirst() }
            unacknowledged.append(Unacknowledged(messageId: messageId, subscriptionId: subscription.id, key: deliveryKey(of: notice)))
        }
        return StompFrame(.message, headers: headers, body: Array(notice.payload.utf8)).withContentLength()
    }

    /// What marks `notice` delivered to this session's user (``NoticeStore/markDelivered(_:at:)``):
    /// its key, or for an announcement (a broadcast) its id with the user's.
    public func deliveryKey(of notice: PushNotice) -> NoticeKey {
        guard notice.isBroadcast, let userId = principal?.userId else { return notice.key }
        return NoticeKey(noticeId: notice.key.noticeId, recipient: userId)
    }

    /// Whether a subscription of this feed receives the notice.
    private static func takes(_ feed: Feed, _ notice: PushNotice, userId: String) -> Bool {
        let key = notice.key
        switch (feed, notice.kind) {
        case (.remind, .notice): return key.recipient == nil || key.recipient == userId
        case (.broadcast, .notice): return key.recipient == nil
        case (.events, .inbox): return key.recipient == nil || key.recipient == userId
        case (.remind, .inbox), (.broadcast, .inbox), (.events, .notice): return false
        }
    }
}
