import CoreMetrics
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket
import StompServer
import Synchronization

/// STOMP over raw WebSocket at `/ws` (SPEC §3) on SwiftNIO channel handlers: the handshake
/// (origin check, subprotocol choice, `access_token`), then one ``StompConnection`` per socket
/// fed by a ``StompWebSocketHandler``. ``NoticeServerChannel`` routes the handshake here.
struct WebSocketEndpoint: Sendable {
    static let path = "/ws"
    /// Subprotocols in the order the server prefers them.
    static let subprotocols = ["v12.stomp", "v11.stomp", "v10.stomp"]

    let environment: StompEnvironment
    let metrics: ServiceMetrics
    let origins: OriginPolicy
    /// Largest WebSocket message accepted (fragments joined); a STOMP frame is bounded
    /// separately, with an ERROR frame, by `environment.maxFrameBytes`.
    let maxMessageBytes: Int
    let sessionIds = SessionIDs()

    /// The subprotocol to answer with, from the client's `Sec-WebSocket-Protocol` offer.
    static func chooseSubprotocol(_ offer: String?) -> String? {
        guard let offer else { return nil }
        let offered = Set(offer.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        return subprotocols.first { offered.contains($0) }
    }

    /// Builds the handshake pipeline of a connection whose first request is a STOMP WebSocket
    /// handshake. `upgraded` gets the session once the upgrade is done, `nil` if the
    /// handshake was refused (403 for a foreign origin, 400 otherwise) or the connection closed.
    func configure(_ channel: any Channel, upgraded: EventLoopPromise<StompConnection?>) throws {
        let refusal = HandshakeRefusal(origins: origins)
        let boundRefusal = NIOLoopBound(refusal, eventLoop: channel.eventLoop)
        let answered = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: maxMessageBytes,
            automaticErrorHandling: true,
            shouldUpgrade: { [self] channel, head in
                channel.eventLoop.makeSucceededFuture(responseHeaders(for: head))
            },
            upgradePipelineHandler: { [self] channel, head in
                channel.eventLoop.makeCompletedFuture {
                    let connection = StompConnection(id: sessionIds.next(), handshakeToken: Self.accessToken(in: head.uri), environment: environment)
                    let pipeline = channel.pipeline.syncOperations
                    pipeline.removeHandler(boundRefusal.value, promise: nil)
                    try pipeline.addHandlers([
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 0,
                            maxAccumulatedFrameCount: 1024,
                            maxAccumulatedFrameSize: maxMessageBytes
                        ),
                        StompWebSocketHandler(connection: connection),
                    ])
                    metrics.webSocketConnections.increment()
                    channel.closeFuture.whenComplete { [metrics] _ in metrics.webSocketConnections.decrement() }
                    answered.value = true
                    upgraded.succeed(connection)
                }
            }
        )
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }),
            withErrorHandling: true
        )
        try channel.pipeline.syncOperations.addHandler(refusal)
        // Whatever the end, `upgraded` is answered (a promise must not be completed twice).
        channel.closeFuture.whenComplete { _ in
            guard !answered.value else { return }
            answered.value = true
            upgraded.succeed(nil)
        }
    }

    /// Runs a session the upgrade produced.
    func start(_ connection: StompConnection, on channel: any Channel) {
        connection.start(outbound: ChannelStompOutbound(channel: channel)) { channel.close(promise: nil) }
    }

    /// The handshake answer's extra headers, `nil` to refuse it.
    private func responseHeaders(for head: HTTPRequestHead) -> HTTPHeaders? {
        guard origins.allows(origin: head.headers.first(name: "origin"), authority: head.headers.first(name: "host")) else { return nil }
        var headers = HTTPHeaders()
        if let chosen = Self.chooseSubprotocol(head.headers[canonicalForm: "sec-websocket-protocol"].joined(separator: ",")) {
            headers.add(name: "Sec-WebSocket-Protocol", value: chosen)
        }
        return headers
    }

    /// The `access_token` query parameter of a request target (SPEC §5).
    static func accessToken(in target: String) -> String? {
        URLComponents(string: target)?.queryItems?.first { $0.name == "access_token" }?.value
    }
}

/// Answers a handshake the upgrader refused, then closes: 403 with our JSON error for a
/// foreign `Origin`, 400 for anything else (a broken handshake).
final class HandshakeRefusal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let origins: OriginPolicy

    init(origins: OriginPolicy) { self.origins = origins }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let forbidden = !origins.allows(origin: head.headers.first(name: "origin"), authority: head.headers.first(name: "host"))
        let body = ByteBuffer(
            string: forbidden
                ? #"{"error":"forbidden_origin","message":"this origin may not connect"}"#
                : #"{"error":"bad_handshake","message":"not a valid WebSocket handshake"}"#
        )
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let response = HTTPResponseHead(version: head.version, status: forbidden ? .forbidden : .badRequest, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Short unique session ids: a per-process prefix and a counter.
final class SessionIDs: Sendable {
    private let prefix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    private let counter = Atomic<UInt64>(0)

    func next() -> String {
        "\(prefix)-\(String(counter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 36))"
    }
}
