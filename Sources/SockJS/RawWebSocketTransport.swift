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
            defer { context.requestContext.webSocketSlot.release() }
            await self.runWebSocketSession(
                .rawWebSocket,
                request: context.request,
                inbound: inbound,
                outbound: outbound,
                decode: { [$0] },
                take: { session, receiver in
                    let (messages, closed) = session.takeRaw(receiver)
                    return (messages, closed)
                }
            )
        }
    }
}
