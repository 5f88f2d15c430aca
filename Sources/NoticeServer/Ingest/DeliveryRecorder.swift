import Foundation
import Logging
import NoticeCore
import ServiceLifecycle
import Synchronization

/// Records `delivered_at` for notices written to sessions, in batches, off the sessions'
/// write path. While notices come in, the ingest pipeline takes the pending marks into its
/// own batch's transaction (``take()``), so they cost no transaction of their own and never
/// hold the store's writer while a batch waits; what is still pending after 200 ms (a quiet
/// queue, a node whose sessions get their notices from another node) is written here.
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

    /// The marks recorded since the last flush or take, for a transaction of the caller's.
    func take() -> [NoticeKey] {
        pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }

    /// Marks taken but not written (the caller's transaction was given up), to be written here.
    func putBack(_ keys: [NoticeKey]) {
        guard !keys.isEmpty else { return }
        pending.withLock { $0.append(contentsOf: keys) }
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
        let keys = take()
        guard !keys.isEmpty else { return }
        do {
            try await store.markDelivered(keys, at: Int64(Date().timeIntervalSince1970 * 1000))
        } catch {
            // Only the delivered mark is lost: the notice itself is stored, and replay may resend it.
            logger.warning("could not record deliveries", metadata: ["error": "\(error)", "notice.count": "\(keys.count)"])
        }
    }
}
