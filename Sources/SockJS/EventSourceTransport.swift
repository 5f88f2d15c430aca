import Hummingbird

/// `GET /<server>/<session>/eventsource`: Server-Sent Events, one `data:` event per frame,
/// after a CRLF prelude.
extension HTTPFraming {
    static let eventSource = HTTPFraming(
        transport: .eventSource,
        contentType: "text/event-stream; charset=UTF-8",
        prelude: "\r\n",
        streaming: true,
        wrap: { "data: " + $0.text + "\r\n\r\n" }
    )
}

extension SockJSServer {
    func addEventSourceRoutes(to group: RouterGroup<Context>) {
        group.get(":server/:session/eventsource") { request, context in
            self.receive(request, context: context, framing: .eventSource)
        }
    }
}
