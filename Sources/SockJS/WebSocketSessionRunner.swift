import Hummingbird
import HummingbirdWebSocket
import NIOWebSocket

/// What the WebSocket transports (framed and raw) share: a session as long as the socket, one
/// task writing what the session has for the browser, one reading what the browser sends.
extension SockJSServer {
    /// Runs a session on a WebSocket until either side ends it.
    /// - Parameters:
    ///   - decode: the messages in one text message from the browser; `[]` ignores it, `nil`
    ///     ends the socket (broken framing).
    ///   - take: the texts to write now and whether the session is over after them; nothing
    ///     and not over means wait for the session's wake-up.
    func runWebSocketSession(
        _ transport: SockJSTransport,
        request: Request,
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter,
        decode: @escaping @Sendable (String) -> [String]?,
        take: @escaping @Sendable (SockJSSession, SockJSSession.Receiver) -> (texts: [String], last: Bool)
    ) async {
        guard let (key, session) = webSocketSession(transport: transport, request: request) else {
            try? await outbound.close(.unexpectedServerError, reason: "Too many sessions")
            return
        }
        defer { forget(key) }
        guard case .attached(let receiver) = session.attach() else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var wake = receiver.wake.makeAsyncIterator()
                while true {
                    let (texts, last) = take(session, receiver)
                    do {
                        for text in texts { try await outbound.write(.text(text)) }
                    } catch {
                        return
                    }
                    if last {
                        try? await outbound.close(.normalClosure, reason: nil)
                        return
                    }
                    if texts.isEmpty {
                        guard await wake.next() != nil else { return }
                    }
                }
            }
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: self.configuration.maxMessageBytes) {
                        guard case .text(let text) = message, let messages = decode(text) else { return }
                        if messages.isEmpty { continue }
                        guard await session.received(messages) else { return }
                    }
                } catch {}
            }
            await group.next()
            group.cancelAll()
        }
        session.detach(receiver)
        session.close(.interrupted)
    }
}
