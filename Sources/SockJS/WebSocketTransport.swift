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
            defer { context.requestContext.webSocketSlot.release() }
            await self.runWebSocketSession(
                .webSocket,
                request: context.request,
                inbound: inbound,
                outbound: outbound,
                decode: { text in text.isEmpty ? [] : SockJSJSON.messages(from: text.utf8, allowSingleString: true) },
                take: { session, receiver in
                    switch session.take(receiver) {
                    case .frames(let frames, let last): (frames.map(\.text), last)
                    case .idle: ([], false)
                    }
                }
            )
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
