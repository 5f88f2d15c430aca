import Foundation
import Hummingbird
import HummingbirdWebSocket
import NoticeCore
import RabbitMQ

/// The demo page (`NOTICE_DEMO=true`, development only): pick a dev user, connect over
/// STOMP, and publish notices to the real queue.
struct DemoRoutes: Sendable {
    let devUsers: [String: String]
    let connection: RabbitMQConnection
    let queue: String

    func addRoutes(to router: Router<NoticeRequestContext>) {
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: .init(string: DemoPage.html))
            )
        }
        router.get("/demo/users") { _, _ in
            let users = devUsers.sorted { $0.value < $1.value }.map { ["token": $0.key, "userId": $0.value] }
            let data = try JSONSerialization.data(withJSONObject: users, options: [.sortedKeys])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: data)))
        }
        router.post("/demo/publish") { request, context -> Response in
            let body = try await request.body.collect(upTo: 128 * 1024)
            let bytes = Array(body.readableBytesView)
            do {
                _ = try NoticeValidator().validate(bytes) { 0 }
            } catch {
                throw APIError(status: .badRequest, error: "invalid_notice", message: "\(error)")
            }
            do {
                try await connection.publish(AMQPMessage(body: bytes, properties: .persistentJSON), exchange: "", routingKey: queue)
            } catch {
                throw APIError(status: .serviceUnavailable, error: "broker_unavailable", message: "\(error)")
            }
            return jsonResponse(status: .accepted, ["status": "published"])
        }
    }
}
