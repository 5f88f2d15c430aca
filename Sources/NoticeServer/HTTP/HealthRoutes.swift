import Hummingbird
import HummingbirdWebSocket
import NoticeCore
import RabbitMQ

/// `/health/live` and `/health/ready` (SPEC §7): ready when the broker is connected and
/// the store can take a write, with the reason when not.
struct HealthRoutes: Sendable {
    let connection: RabbitMQConnection
    let relay: ClusterRelay?
    let store: any NoticeStore
    let health: ServiceHealth

    func addRoutes(to router: Router<NoticeRequestContext>) {
        router.get("/health/live") { _, _ in
            jsonResponse(status: .ok, ["status": "live"])
        }
        router.get("/health/ready") { _, _ in
            var problems: [String: String] = [:]
            if !connection.isConnected {
                problems["broker"] = connection.lastError ?? "not connected"
            }
            if let relay, !relay.isConnected {
                problems["relay"] = relay.lastError ?? "not connected"
            }
            if let storeError = health.storeError {
                problems["store"] = storeError
            } else {
                do { try await store.ping() } catch { problems["store"] = "\(error)" }
            }
            guard problems.isEmpty else {
                return jsonResponse(status: .serviceUnavailable, problems.merging(["status": "not ready"]) { $1 })
            }
            return jsonResponse(status: .ok, ["status": "ready", "broker": "connected", "store": "ok"])
        }
    }
}
