import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// `/websocket`: a session over a plain WebSocket, without SockJS framing: each text message
/// either way is one message; no open, heartbeat or close frames.
extension SockJSServer {
    func addRawWebSocketRoutes(to group: RouterGroup<Context>, webSocketRouter: Router<Context>) {
        group.get("websocket") { request, _ in Self.notAnUpgrade(request) }
        group.post("websocket") { _, _ in SockJSHTTP.methodNotAllowed(allow: "GET") }
        webSocketRouter.ws("\(prefix)/websocket") { request, context in
            guard self.configuration.webSocketEnabled, (try? self.filter(request, context, true)) != nil else { return .dontUpgrade }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let (key, session) = self.webSocketSession(transport: .rawWebSocket, request: context.request) else {
                try? await outbound.close(.unexpectedServerError, reason: "Too many sessions")
                return
            }
            defer { self.forget(key) }
            guard case .attached(let receiver) = session.attach() else { return }
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    var wake = receiver.wake.makeAsyncIterator()
                    while true {
                        let (messages, closed) = session.takeRaw(receiver)
                        do {
                            for message in messages { try await outbound.write(.text(message)) }
                        } catch {
                            return
                        }
                        if closed {
                            try? await outbound.close(.normalClosure, reason: nil)
                            return
                        }
                        if messages.isEmpty {
                            guard await wake.next() != nil else { return }
                        }
                    }
                }
                group.addTask {
                    do {
                        for try await message in inbound.messages(maxSize: self.configuration.maxMessageBytes) {
                            guard case .text(let text) = message else { return }
                            guard await session.received([text]) else { return }
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
}
