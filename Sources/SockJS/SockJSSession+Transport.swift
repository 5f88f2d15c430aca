import Synchronization

/// The transport side of a session: receivers attach, take what is queued and detach; the
/// browser's messages come in; the reaper's clock ticks.
extension SockJSSession {
    /// Hands the browser's messages to the application; waits while too much is pending.
    /// `false` if the session is closed.
    func received(_ messages: [String]) async -> Bool {
        guard !isClosed else { return false }
        for message in messages {
            pendingInbound.wrappingAdd(message.utf8.count, ordering: .relaxed)
            inboundInput.yield(message)
        }
        while pendingInbound.load(ordering: .relaxed) > configuration.maxPendingInboundBytes, !isClosed, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(2))
        }
        return !isClosed
    }

    /// Claims the session for a receiver.
    func attach() -> Attach {
        state.withLock { state in
            if state.receiver != nil { return .busy }
            if let closeFrame = state.closeFrame, state.outbox.isEmpty, state.opened { return .closed(closeFrame) }
            let (wake, input) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            let id = state.nextReceiver
            state.nextReceiver += 1
            state.receiver = id
            state.wake = input
            state.idleSince = nil
            return .attached(Receiver(id: id, wake: wake))
        }
    }

    /// The frames `receiver` should write now: the open frame first, then queued messages,
    /// then the close frame (`last`), or a heartbeat when one is due.
    func take(_ receiver: Receiver) -> Take {
        var drained: [CheckedContinuation<Void, Never>] = []
        defer { for waiter in drained { waiter.resume() } }
        return state.withLock { state in
            guard state.receiver == receiver.id else { return .frames([], last: true) }
            var frames: [SockJSFrame] = []
            var last = false
            if !state.opened {
                state.opened = true
                frames.append(.open)
            } else if !state.outbox.isEmpty {
                frames.append(.messages(state.outbox))
                state.outbox = []
                state.outboxBytes = 0
                drained = state.takeRoomWaiters()
            } else if let closeFrame = state.closeFrame {
                frames.append(closeFrame)
                last = true
            } else if state.heartbeatDue {
                frames.append(.heartbeat)
            }
            guard !frames.isEmpty else { return .idle }
            state.heartbeatDue = false
            state.lastFrameAt = .now
            return .frames(frames, last: last)
        }
    }

    /// Raw WebSocket: the queued messages one by one, and whether the session is closed.
    func takeRaw(_ receiver: Receiver) -> (messages: [String], closed: Bool) {
        var drained: [CheckedContinuation<Void, Never>] = []
        defer { for waiter in drained { waiter.resume() } }
        return state.withLock { state in
            guard state.receiver == receiver.id else { return ([], true) }
            state.opened = true
            let messages = state.outbox
            state.outbox = []
            state.outboxBytes = 0
            drained = state.takeRoomWaiters()
            return (messages, state.closeFrame != nil)
        }
    }

    /// `receiver` is done. `interrupted`: it went away mid-response (a network error); the
    /// session is then closed, as sockjs-node does, since frames may have been lost.
    func detach(_ receiver: Receiver, interrupted: Bool = false) {
        let released = state.withLock { state in
            guard state.receiver == receiver.id else { return false }
            state.receiver = nil
            state.wake?.finish()
            state.wake = nil
            state.idleSince = .now
            return true
        }
        if released, interrupted { close(.interrupted) }
    }

    /// Advances timers; `true` when the session is to be forgotten (no receiver for longer
    /// than the disconnect delay).
    func tick(now: ContinuousClock.Instant) -> Bool {
        let expired = state.withLock { state -> Bool in
            if state.receiver != nil {
                if now - state.lastFrameAt >= configuration.heartbeatInterval, !state.heartbeatDue {
                    state.heartbeatDue = true
                    state.wake?.yield()
                }
                return false
            }
            guard let idleSince = state.idleSince else { return false }
            return now - idleSince >= configuration.disconnectDelay
        }
        if expired { close(.interrupted) }
        return expired
    }
}
