import AsyncHTTPClient
import ServiceLifecycle

/// Owns the process's HTTP client and shuts it down after everything else has stopped.
struct HTTPClientService: Service, CustomStringConvertible {
    let client: HTTPClient
    var description: String { "HTTPClientService" }

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
