import Logging
import NoticeCore
import ServiceLifecycle

/// On shutdown, tells every STOMP session `server shutting down` and waits (up to 5 s)
/// until they have closed, before the HTTP server goes.
struct SessionCloser: Service, CustomStringConvertible {
    let hub: DeliveryHub
    let logger: Logger
    var description: String { "SessionCloser" }

    func run() async throws {
        try? await gracefulShutdown()
        let open = hub.sessionCount
        hub.closeAll(message: "server shutting down", detail: "reconnect to another node")
        let deadline = ContinuousClock.now + .seconds(5)
        while hub.sessionCount > 0, ContinuousClock.now < deadline {
            do { try await Task.sleep(for: .milliseconds(10)) } catch { break }
        }
        logger.info("sessions closed", metadata: ["stomp.sessions": "\(open)", "stomp.still_open": "\(hub.sessionCount)"])
    }
}
