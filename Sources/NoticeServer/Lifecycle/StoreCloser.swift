import NoticeCore
import ServiceLifecycle

/// Closes the store after everything that uses it has stopped.
struct StoreCloser: Service, CustomStringConvertible {
    let store: any NoticeStore
    var description: String { "StoreCloser" }

    func run() async throws {
        try? await gracefulShutdown()
        try await store.close()
    }
}
