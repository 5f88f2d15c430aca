import Foundation
import Logging
import NoticeCore
import ServiceLifecycle

/// Writes the ``DeliveryMarks`` that no ingest batch took (a quiet queue, a node whose
/// sessions get their notices from another node) every 200 ms, and what is left at shutdown.
final class DeliveryRecorder: Service, Sendable, CustomStringConvertible {
    private let store: any NoticeStore
    private let marks: DeliveryMarks
    private let logger: Logger
    var description: String { "DeliveryRecorder" }

    init(store: any NoticeStore, marks: DeliveryMarks, logger: Logger) {
        self.store = store
        self.marks = marks
        self.logger = logger
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
        let keys = marks.take()
        guard !keys.isEmpty else { return }
        do {
            try await store.markDelivered(keys, at: Int64(Date().timeIntervalSince1970 * 1000))
        } catch {
            // Only the delivered mark is lost: the notice itself is stored, and replay may resend it.
            logger.warning("could not record deliveries", metadata: ["error": "\(error)", "notice.count": "\(keys.count)"])
        }
    }
}
