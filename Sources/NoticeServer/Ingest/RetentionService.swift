import Foundation
import Logging
import NoticeCore
import ServiceLifecycle

/// Purges notices older than `NOTICE_RETENTION_DAYS` (SPEC §6) at start and then hourly,
/// in batches of `batchSize` rows with a pause between them, so that a large purge never
/// holds the store's write lock for long.
struct RetentionService: Service, CustomStringConvertible {
    let store: any NoticeStore
    let retention: Duration
    let logger: Logger
    var interval: Duration = .seconds(3600)
    var batchSize = 1000
    var description: String { "RetentionService" }

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await purgeOnce()
            do {
                try await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// One full pass; returns how many rows it deleted.
    @discardableResult
    func purgeOnce(now: Date = Date()) async -> Int {
        let cutoff = Int64((now.timeIntervalSince1970 - Double(retention.components.seconds)) * 1000)
        var total = 0
        while !Task.isShuttingDownGracefully {
            let deleted: Int
            do {
                deleted = try await store.purge(createdBefore: cutoff, limit: batchSize)
            } catch {
                logger.warning("retention purge failed; will retry on the next pass", metadata: ["error": "\(error)"])
                break
            }
            total += deleted
            guard deleted == batchSize else { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if total > 0 { logger.info("purged old notices", metadata: ["notice.count": "\(total)"]) }
        return total
    }
}
