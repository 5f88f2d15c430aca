import CoreMetrics
import Hummingbird
import Logging
import NIOCore
import SockJS
import StompServer

/// STOMP over SockJS under `/ws` (SPEC §3), for the legacy `new SockJS('/notice/ws')`: the
/// same origin rule and `access_token` handshake parameter as the raw WebSocket endpoint,
/// and one ``StompConnection`` per SockJS session (each SockJS message is bytes for the STOMP
/// decoder; each STOMP frame the server writes is one SockJS message).
struct SockJSEndpoint {
    static func make(
        environment: StompEnvironment,
        metrics: ServiceMetrics,
        origins: OriginPolicy,
        refused: RefusedHandshakes,
        sessionIds: SessionIDs,
        configuration: SockJSConfiguration
    ) -> SockJSServer<NoticeRequestContext> {
        SockJSServer(prefix: "/ws", configuration: configuration, logger: environment.logger) { request, context, upgrade in
            guard origins.allows(request) else {
                if upgrade { refused.refuse(context.channel) }
                throw APIError(status: .forbidden, error: "forbidden_origin", message: "this origin may not connect")
            }
        } handler: { session in
            let transport = "sockjs_" + session.transport.rawValue
            let token = session.uri.queryParameters["access_token"].map(String.init)
            let connection = StompConnection(id: sessionIds.next(), handshakeToken: token, environment: environment, transport: transport)
            let connections = metrics.connections(transport: transport)
            connections.increment()
            defer { connections.decrement() }
            await connection.serve(inbound: session.messages, outbound: SockJSStompOutbound(session: session)) { ByteBuffer(string: $0) }
        }
    }
}

/// Queues STOMP frames as SockJS messages.
struct SockJSStompOutbound: StompOutbound {
    let session: SockJSSession

    func send(_ frame: [UInt8]) async throws {
        // A SockJS message is a JSON string: the frame's text, escaped. Waits while the
        // browser has not taken what is queued (a replay is paced by the transport's drain).
        try await session.sendWhenRoom(String(decoding: frame, as: UTF8.self))
    }

    func close() async {
        session.close()
    }
}

/// It already carries the channel SockJS watches for browsers that go away.
extension NoticeRequestContext: SockJSRequestContext {}
