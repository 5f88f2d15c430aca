import HTTPTypes
import Hummingbird
import NIOCore

/// How an HTTP transport writes a session's frames into its response.
struct HTTPFraming: Sendable {
    let transport: SockJSTransport
    let contentType: String
    /// Written before anything else (browsers need it to start rendering a stream).
    let prelude: String?
    /// Streaming transports keep writing until the response limit; polling ends after a write.
    let streaming: Bool
    let wrap: @Sendable (SockJSFrame) -> String
}

extension SockJSServer {
    /// A receiving request (`xhr`, `xhr_streaming`, `eventsource`, `htmlfile`): finds or opens
    /// the session and answers with a body that carries its frames.
    func receive(_ request: Request, context: Context, framing: HTTPFraming) -> Response {
        guard let id = sessionId(context) else { return Response(status: .notFound) }
        let session: SockJSSession
        switch self.session(id: id, transport: framing.transport, request: request) {
        case .existing(let existing): session = existing
        case .created(let created): session = created
        case .full: return SockJSHTTP.text(.serviceUnavailable, "Too many sessions.")
        }
        let limit = configuration.responseLimit
        var headers = SockJSHTTP.dynamic(request, contentType: framing.contentType)
        // nginx would otherwise hold streamed frames in its buffers.
        if framing.streaming, let name = HTTPField.Name("X-Accel-Buffering") { headers[name] = "no" }
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                if let prelude = framing.prelude { try await writer.write(ByteBuffer(string: prelude)) }
                await Self.serve(session, framing: framing, limit: limit, channel: context.channel, writer: &writer)
                try await writer.finish(nil)
            }
        )
    }

    /// The session id of a session URL, if both it and the server id are valid.
    func sessionId(_ context: Context) -> String? {
        guard SockJSHTTP.isValidId(context.parameters.get("server")) else { return nil }
        let id = context.parameters.get("session")
        return SockJSHTTP.isValidId(id) ? id : nil
    }

    private static func serve(
        _ session: SockJSSession,
        framing: HTTPFraming,
        limit: Int,
        channel: any Channel,
        writer: inout any ResponseBodyWriter
    ) async {
        let receiver: SockJSSession.Receiver
        switch session.attach() {
        case .busy:
            try? await writer.write(ByteBuffer(string: framing.wrap(.anotherConnection)))
            return
        case .closed(let frame):
            try? await writer.write(ByteBuffer(string: framing.wrap(frame)))
            return
        case .attached(let attached):
            receiver = attached
        }
        // A browser that goes away while the receiver waits is noticed at once, not at the next
        // heartbeat (a no-op if the receiver is gone by then: the connection may be reused).
        channel.closeFuture.whenComplete { _ in session.detach(receiver, interrupted: true) }
        var wake = receiver.wake.makeAsyncIterator()
        var sent = 0
        while true {
            switch session.take(receiver) {
            case .frames(let frames, let last):
                do {
                    for frame in frames {
                        let text = framing.wrap(frame)
                        try await writer.write(ByteBuffer(string: text))
                        sent += text.utf8.count
                    }
                } catch {
                    session.detach(receiver, interrupted: true)
                    return
                }
                if last || !framing.streaming || sent >= limit {
                    session.detach(receiver)
                    return
                }
            case .idle:
                // nil: the browser went away (the channel closed or the request was cancelled).
                guard await wake.next() != nil else {
                    session.detach(receiver, interrupted: true)
                    return
                }
            }
        }
    }
}
