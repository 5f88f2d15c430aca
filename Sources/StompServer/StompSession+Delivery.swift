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
        for index in subscriptions.indices where Self.takes(subscriptions[index].feed, notice.key, userId: principal.userId) {
            if subscriptions[index].replayed.remove(notice.key) != nil { continue }
            delivery.frames.append(message(notice, on: subscriptions[index]))
            if subscriptions[index].ackMode == .auto { delivery.deliveredOnWrite = true }
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
        for notice in notices where Self.takes(subscriptions[index].feed, notice.key, userId: principal.userId) {
            guard subscriptions[index].replayed.insert(notice.key).inserted else { continue }
            delivery.frames.append(message(notice, on: subscriptions[index]))
        }
        return delivery
    }

    private mutating func message(_ notice: PushNotice, on subscription: Subscription) -> StompFrame {
        messageCounter += 1
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
            unacknowledged.append(Unacknowledged(messageId: messageId, subscriptionId: subscription.id, key: notice.key))
        }
        return StompFrame(.message, headers: headers, body: Array(notice.payload.utf8)).withContentLength()
    }

    /// Whether a subscription of this feed receives the notice with this key.
    private static func takes(_ feed: Feed, _ key: NoticeKey, userId: String) -> Bool {
        switch feed {
        case .remind: key.recipient == nil || key.recipient == userId
        case .broadcast: key.recipient == nil
        }
    }
}
