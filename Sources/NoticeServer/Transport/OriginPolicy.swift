import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes
import Synchronization

/// SPEC §3: a browser request whose `Origin` is not allowed gets 403. Requests without
/// `Origin` (non-browser clients) are allowed, and so is the page's own origin (the
/// `Origin` whose host equals the request's `Host`).
struct OriginPolicy: Sendable {
    let allowed: NoticeServiceConfiguration.AllowedOrigins

    func allows(_ request: Request) -> Bool {
        allows(origin: request.headers[.origin], authority: request.head.authority)
    }

    func allows(origin: String?, authority: String?) -> Bool {
        guard let origin = origin?.lowercased() else { return true }
        switch allowed {
        case .any:
            return true
        case .list(let origins):
            if origins.contains(origin) { return true }
            guard let host = authority?.lowercased() else { return false }
            return origin == "http://\(host)" || origin == "https://\(host)"
        }
    }
}

/// The channels whose WebSocket handshake was just refused for its `Origin`.
final class RefusedHandshakes: Sendable {
    private let channels = Mutex<Set<ObjectIdentifier>>([])

    /// Called by the upgrade check when it refuses `channel` for its origin.
    func refuse(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLock { _ = $0.insert(id) }
        channel.closeFuture.whenComplete { [self] _ in
            _ = channels.withLock { $0.remove(id) }
        }
    }

    /// Whether `channel` was refused (forgetting it).
    func take(_ channel: any Channel) -> Bool {
        channels.withLock { $0.remove(ObjectIdentifier(channel)) != nil }
    }
}

/// Turns the refusal of a WebSocket handshake from a foreign origin into 403 with our JSON
/// error. HummingbirdWebSocket 2.8 answers every refused upgrade with a bare 400 on the HTTP
/// pipeline it builds after the refusal; this handler sits in that pipeline, learns from
/// ``RefusedHandshakes`` that the refusal was ours, and rewrites the answer.
final class ForbiddenOriginUpgradeHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let refused: RefusedHandshakes
    private var refusedForOrigin = false

    init(refused: RefusedHandshakes) { self.refused = refused }

    func handlerAdded(context: ChannelHandlerContext) {
        refusedForOrigin = refused.take(context.channel)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard refusedForOrigin, case .head(var response) = unwrapOutboundIn(data), response.status == .badRequest else {
            context.write(data, promise: promise)
            return
        }
        refusedForOrigin = false
        let body = ByteBuffer(string: #"{"error":"forbidden_origin","message":"this origin may not connect"}"#)
        response.status = .forbidden
        response.headerFields[.contentLength] = String(body.readableBytes)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: promise)
    }
}
