import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// STOMP over raw WebSocket at `/ws` (SPEC §3): origin check, subprotocol choice, and a
/// ``StompConnection`` per socket.
struct WebSocketEndpoint: Sendable {
    /// Subprotocols in the order the server prefers them.
    static let subprotocols = ["v12.stomp", "v11.stomp", "v10.stomp"]

    let environment: StompEnvironment
    let origins: OriginPolicy
    let refused: RefusedHandshakes
    let sessionIds = SessionIDs()

    /// The subprotocol to answer with, from the client's `Sec-WebSocket-Protocol` offer.
    static func chooseSubprotocol(_ offer: String?) -> String? {
        guard let offer else { return nil }
        let offered = Set(offer.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        return subprotocols.first { offered.contains($0) }
    }

    func addRoutes(to router: Router<NoticeRequestContext>) {
        router.ws("/ws") { request, context in
            guard origins.allows(request) else {
                refused.refuse(context.channel)
                return .dontUpgrade
            }
            var headers = HTTPFields()
            if let chosen = Self.chooseSubprotocol(request.headers[.secWebSocketProtocol]) {
                headers[.secWebSocketProtocol] = chosen
            }
            return .upgrade(headers)
        } onUpgrade: { inbound, outbound, context in
            let token = context.request.uri.queryParameters["access_token"].map(String.init)
            let connection = StompConnection(id: sessionIds.next(), handshakeToken: token, environment: environment)
            environment.metrics.webSocketConnections.increment()
            defer { environment.metrics.webSocketConnections.decrement() }
            await connection.serve(inbound: inbound, outbound: WebSocketStompOutbound(writer: outbound)) { $0.data }
        }
    }
}

/// Writes STOMP frames as WebSocket text messages.
struct WebSocketStompOutbound: StompOutbound {
    let writer: WebSocketOutboundWriter

    func send(_ text: String) async throws {
        try await writer.write(.text(text))
    }

    func close() async {
        try? await writer.close(.normalClosure, reason: nil)
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
