import Synchronization

/// Something that takes notices for one connected user: a browser session.
///
/// `push` must not block: a session buffers (bounded) and writes on its own task.
public protocol NoticeSink: AnyObject, Sendable {
    func push(_ notice: PushNotice)
    /// Ends the session with a STOMP ERROR (e.g. `server shutting down`), without blocking.
    func close(message: String, detail: String)
}

/// The sessions open on this node, by user, and the fan-out of stored notices to them.
///
/// Calls to ``publish(_:)`` from one task reach each session in that order, so a user
/// receives notices in queue order.
public final class DeliveryHub: Sendable {
    private struct State {
        var byUser: [String: [ObjectIdentifier: any NoticeSink]] = [:]
        var sessionCount = 0
    }

    /// Most sessions one user may hold open on this node.
    public let maxSessionsPerUser: Int
    private let state = Mutex(State())

    public init(maxSessionsPerUser: Int) {
        self.maxSessionsPerUser = maxSessionsPerUser
    }

    /// Adds a session of `userId`; `false` when the user already holds the maximum.
    public func register(_ sink: any NoticeSink, userId: String) -> Bool {
        state.withLock { state in
            var sessions = state.byUser[userId, default: [:]]
            guard sessions.count < maxSessionsPerUser else { return false }
            if sessions.updateValue(sink, forKey: ObjectIdentifier(sink)) == nil { state.sessionCount += 1 }
            state.byUser[userId] = sessions
            return true
        }
    }

    /// Removes a session (no effect if it was not registered).
    public func unregister(_ sink: any NoticeSink, userId: String) {
        state.withLock { state in
            guard var sessions = state.byUser[userId], sessions.removeValue(forKey: ObjectIdentifier(sink)) != nil else { return }
            state.sessionCount -= 1
            state.byUser[userId] = sessions.isEmpty ? nil : sessions
        }
    }

    /// Open sessions on this node.
    public var sessionCount: Int { state.withLock { $0.sessionCount } }

    /// Open sessions of one user on this node.
    public func sessionCount(of userId: String) -> Int {
        state.withLock { $0.byUser[userId]?.count ?? 0 }
    }

    /// Asks every session of `userId` on this node to close with an ERROR frame; returns how many.
    @discardableResult
    public func close(userId: String, message: String, detail: String) -> Int {
        let sinks = state.withLock { $0.byUser[userId].map { Array($0.values) } ?? [] }
        for sink in sinks { sink.close(message: message, detail: detail) }
        return sinks.count
    }

    /// Asks every session to close with an ERROR frame.
    public func closeAll(message: String, detail: String) {
        let sinks = state.withLock { $0.byUser.values.flatMap { $0.values } }
        for sink in sinks { sink.close(message: message, detail: detail) }
    }

    /// Hands each notice to every session of its recipient, or to every session for a broadcast.
    /// Returns how many sessions were handed a notice.
    @discardableResult
    public func publish(_ notices: [PushNotice]) -> Int {
        var handed = 0
        for notice in notices {
            let sinks: [any NoticeSink] = state.withLock { state in
                if let recipient = notice.key.recipient {
                    return state.byUser[recipient].map { Array($0.values) } ?? []
                }
                return state.byUser.values.flatMap { $0.values }
            }
            for sink in sinks { sink.push(notice) }
            handed += sinks.count
        }
        return handed
    }
}
