import Hummingbird

/// `POST /<server>/<session>/xhr`: one frame (or one batch of messages) per request, each
/// followed by a newline.
extension HTTPFraming {
    static let xhrPolling = HTTPFraming(
        transport: .xhrPolling,
        contentType: SockJSHTTP.javascript,
        prelude: nil,
        streaming: false,
        wrap: { $0.text + "\n" }
    )
}

extension SockJSServer {
    func addXHRPollingRoutes(to group: RouterGroup<Context>) {
        group.post(":server/:session/xhr") { request, context in
            self.receive(request, context: context, framing: .xhrPolling)
        }
        group.on(":server/:session/xhr", method: .options) { request, _ in
            SockJSHTTP.options(request, methods: "OPTIONS, POST")
        }
    }
}
