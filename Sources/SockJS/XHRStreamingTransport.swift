import Hummingbird

/// `POST /<server>/<session>/xhr_streaming`: a prelude of 2,048 `h` and a newline (so that
/// browsers start handing the body to the page), then newline-terminated frames until the
/// response limit.
extension HTTPFraming {
    static let xhrStreaming = HTTPFraming(
        transport: .xhrStreaming,
        contentType: SockJSHTTP.javascript,
        prelude: String(repeating: "h", count: 2048) + "\n",
        streaming: true,
        wrap: { $0.text + "\n" }
    )
}

extension SockJSServer {
    func addXHRStreamingRoutes(to group: RouterGroup<Context>) {
        group.post(":server/:session/xhr_streaming") { request, context in
            self.receive(request, context: context, framing: .xhrStreaming)
        }
        group.on(":server/:session/xhr_streaming", method: .options) { request, _ in
            SockJSHTTP.options(request, methods: "OPTIONS, POST")
        }
    }
}
