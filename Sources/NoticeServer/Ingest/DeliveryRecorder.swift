import Foundation
import Logging
import NoticeCore
import ServiceLifecycle
import Synchronization

/// Records `delivered_at` for notices written to sessions, in batches (one transaction
/// every 200 ms at most), off the sessions' write path.
final class DeliveryRecorder: Service, Sendable, CustomStringConvertible {
    private let store: any NoticeStore
    private let logger: Logger
    private let pending = Mutex<[NoticeKey]>([])
    var description: String { "DeliveryRecorder" }

    init(store: any NoticeStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    func record(_ key: NoticeKey) {
        pending.withLock { $0.append(key) }
    }

    func run() async throws {
        // Ends on graceful shutdown or cancellation alike (a cancelled sleep must not spin).
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(200)) }
            } catch {
                break
            }
            await flush()
        }
        await flush()
    }

    func flush() async {
        let keys = pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        guard !keys.isEmpty else { return }
        do {
            try await store.markDelivered(keys, at: Int64(Date().timeIntervalSince1970 * 1000))
        } catch {
            // Only the delivered mark is lost: the notice itself is stored, and replay may resend it.
            logger.warning("could not record deliveries", metadata: ["error": "\(error)", "notice.count": "\(keys.count)"])
        }
    }
}
