import Hummingbird
import NIOCore

/// `POST /<server>/<session>/xhr_send`: the browser's messages (a JSON array of strings) for
/// an existing session, used with every HTTP receiving transport. 204 when taken; 404 for
/// an unknown session; 500 "Payload expected." or "Broken JSON encoding."; 413 past the
/// message size limit.
extension SockJSServer {
    func addXHRSendRoutes(to group: RouterGroup<Context>) {
        group.post(":server/:session/xhr_send") { request, context in
            try await self.xhrSend(request, context: context)
        }
        group.on(":server/:session/xhr_send", method: .options) { request, _ in
            SockJSHTTP.options(request, methods: "OPTIONS, POST")
        }
    }

    private func xhrSend(_ request: Request, context: Context) async throws -> Response {
        guard let id = sessionId(context), let session = existingSession(id: id) else { return Response(status: .notFound) }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxMessageBytes)
        } catch {
            return SockJSHTTP.text(.contentTooLarge, "Payload too large.")
        }
        guard body.readableBytes > 0 else { return SockJSHTTP.text(.internalServerError, "Payload expected.") }
        guard let messages = SockJSJSON.messages(from: body.readableBytesView, allowSingleString: false) else {
            return SockJSHTTP.text(.internalServerError, "Broken JSON encoding.")
        }
        guard await session.received(messages) else { return Response(status: .notFound) }
        return Response(status: .noContent, headers: SockJSHTTP.dynamic(request, contentType: SockJSHTTP.plainText))
    }
}
