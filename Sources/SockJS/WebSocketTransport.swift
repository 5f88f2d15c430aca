import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// `/<server>/<session>/websocket`: SockJS frames as WebSocket text messages; the browser
/// sends a JSON array of strings (or one JSON string) per message. The session lives as long
/// as the socket. Broken JSON ends the socket at once; empty messages are ignored.
extension SockJSServer {
    func addWebSocketRoutes(to group: RouterGroup<Context>, webSocketRouter: Router<Context>) {
        group.get(":server/:session/websocket") { request, context in
            guard self.sessionId(context) != nil else { return Response(status: .notFound) }
            return Self.notAnUpgrade(request)
        }
        group.post(":server/:session/websocket") { _, _ in SockJSHTTP.methodNotAllowed(allow: "GET") }
        webSocketRouter.ws("\(prefix)/:server/:session/websocket") { request, context in
            guard self.configuration.webSocketEnabled, self.sessionId(context) != nil, (try? self.filter(request, context, true)) != nil else {
                return .dontUpgrade
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let (key, session) = self.webSocketSession(transport: .webSocket, request: context.request) else {
                try? await outbound.close(.unexpectedServerError, reason: "Too many sessions")
                return
            }
            defer { self.forget(key) }
            guard case .attached(let receiver) = session.attach() else { return }
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    var wake = receiver.wake.makeAsyncIterator()
                    while true {
                        switch session.take(receiver) {
                        case .frames(let frames, let last):
                            do {
                                for frame in frames { try await outbound.write(.text(frame.text)) }
                            } catch {
                                return
                            }
                            if last {
                                try? await outbound.close(.normalClosure, reason: nil)
                                return
                            }
                        case .idle:
                            guard await wake.next() != nil else { return }
                        }
                    }
                }
                group.addTask {
                    do {
                        for try await message in inbound.messages(maxSize: self.configuration.maxMessageBytes) {
                            guard case .text(let text) = message else { return }
                            if text.isEmpty { continue }
                            guard let messages = SockJSJSON.messages(from: text.utf8, allowSingleString: true) else { return }
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

    /// The answer to a plain HTTP request on a WebSocket URL (what sockjs-node says).
    static func notAnUpgrade(_ request: Request) -> Response {
        if request.headers[.upgrade]?.lowercased() == "websocket" {
            return SockJSHTTP.text(.badRequest, "\"Connection\" must be \"Upgrade\".")
        }
        return SockJSHTTP.text(.badRequest, "Can \"Upgrade\" only to \"WebSocket\".")
    }
}
