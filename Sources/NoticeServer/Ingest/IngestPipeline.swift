import CoreMetrics
import Foundation
import Logging
import NoticeCore
import RabbitMQ
import ServiceLifecycle

/// Queue → store → sessions (SPEC §1–2): validates each batch of deliveries, commits the
/// valid records in one transaction, then acks them and hands the new ones to the hub;
/// invalid messages are republished to `<queue>.dead` with `x-notice-error` and acked
/// once the broker confirms the republish.
///
/// While the store fails, the batch is retried with backoff and nothing is acked, so
/// consumption pauses at the prefetch limit and resumes by itself.
struct IngestPipeline: Service, CustomStringConvertible {
    let connection: RabbitMQConnection
    let store: any NoticeStore
    let hub: DeliveryHub
    /// Delivered marks ride along in each batch's transaction.
    let marks: DeliveryMarks
    /// Set when several nodes share the queue and the store (SPEC §8).
    let relay: ClusterRelay?
    let health: ServiceHealth
    let configuration: NoticeServiceConfiguration
    let ids: NoticeIDGenerator
    let metrics: ServiceMetrics
    let logger: Logger
    let validator = NoticeValidator()
    var description: String { "IngestPipeline(queue: \(configuration.queue))" }

    func run() async throws {
        connection.start()
        await withGracefulShutdownHandler {
            for await batch in connection.deliveries {
                await process(batch)
            }
        } onGracefulShutdown: {
            // Stop taking new messages; what was already delivered is finished and acked below.
            Task { await connection.stopConsuming() }
        }
        await connection.shutdown()
        logger.info("ingest stopped")
    }

    func process(_ batch: [AMQPDelivery]) async {
        let consumedAt = ContinuousClock.now
        metrics.consumed.increment(by: Int64(batch.count))
        var accepted: [(delivery: AMQPDelivery, record: NoticeRecord)] = []
        var rejected: [(delivery: AMQPDelivery, reason: String)] = []
        for delivery in batch {
            guard delivery.message.body.count <= configuration.maxMessageBytes else {
                rejected.append(
                    (delivery, "message of \(delivery.message.body.count) bytes is over NOTICE_MAX_MESSAGE_BYTES (\(configuration.maxMessageBytes))")
                )
                continue
            }
            do {
                let record = try validator.validate(delivery.message.body, assignId: ids.next)
                accepted.append((delivery, record))
            } catch {
                rejected.append((delivery, error.description))
            }
        }

        if !accepted.isEmpty {
            // A record published without an id gets a new one each time it is consumed; when the
            // broker redelivers it (a crash between commit and ack), reuse the id stored the first time.
            var sourceKeys: [Int: String] = [:]
            for (index, item) in accepted.enumerated() where item.record.idWasAssigned {
                sourceKeys[index] = SourceKey.of(item.delivery.message)
            }
            let redelivered = accepted.indices.filter { accepted[$0].delivery.redelivered }.compactMap { sourceKeys[$0] }
            if !redelivered.isEmpty {
                guard let (known, _) = await retryingStore({ try await store.noticeIds(forSourceKeys: redelivered) }) else { return }
                for (index, key) in sourceKeys {
                    if let id = known[key] { accepted[index].record.id = id }
                }
            }

            let millis = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            let fanOut = NoticeFanOut(
                accepted.enumerated().map { index, item in
                    NoticeFanOut.Item(record: item.record, redelivered: item.delivery.redelivered, sourceKey: sourceKeys[index])
                },
                pushTargets: configuration.pushTargets,
                createdAtMillis: millis
            )
            let rows = fanOut.rows
            let delivered = marks.take()
            guard let (inserted, retried) = await retryingStore({ try await store.insert(rows, markingDelivered: delivered, at: millis) }) else {
                marks.putBack(delivered)
                return
            }
            connection.settle(accepted.map(\.delivery.tag))
            let notices = fanOut.notices(inserted: inserted, retried: retried, consumedAt: consumedAt)
            metrics.stored.increment(by: Int64(inserted.count))
            hub.publish(notices)
            relay?.forward(notices)
            if inserted.count < rows.count {
                logger.debug("redelivered notices already stored", metadata: ["notice.duplicates": "\(rows.count - inserted.count)"])
            }
        }

        for (delivery, reason) in rejected {
            await deadLetter(delivery, reason: reason)
        }
    }

    /// Runs a store operation, retrying with backoff while the store fails; `retried`: an
    /// attempt failed first. `nil` when shutdown interrupted the retries (then nothing is acked
    /// and the broker keeps the messages).
    private func retryingStore<Result: Sendable>(_ operation: () async throws -> Result) async -> (result: Result, retried: Bool)? {
        var delay = Duration.milliseconds(50)
        var retried = false
        while true {
            // Shutting down with the store failing: leave the messages to the broker at once.
            if Task.isShuttingDownGracefully, health.storeError != nil { return nil }
            do {
                let result = try await operation()
                if health.storeError != nil {
                    health.storeRecovered()
                    logger.info("store recovered")
                }
                return (result, retried)
            } catch {
                retried = true
                health.storeFailed("\(error)")
                logger.error("store operation failed; not acking, will retry", metadata: ["error": "\(error)", "retry.after": "\(delay)"])
            }
            do {
                try await cancelWhenGracefulShutdown { [delay] in try await Task.sleep(for: delay) }
            } catch {
                return nil
            }
            delay = min(delay * 2, .seconds(5))
        }
    }

    private func deadLetter(_ delivery: AMQPDelivery, reason: String) async {
        var message = delivery.message
        var headers = message.properties.headers ?? AMQPTable()
        headers["x-notice-error"] = .text(reason)
        message.properties.headers = headers
        // Keep it across a broker restart even if the publisher sent it transient.
        message.properties.deliveryMode = 2
        logger.warning(
            "invalid notice dead-lettered",
            metadata: ["notice.error": "\(reason)", "amqp.bytes": "\(delivery.message.body.count)", "amqp.queue": "\(configuration.deadLetterQueue)"]
        )
        var delay = Duration.milliseconds(100)
        while true {
            do {
                try await connection.publish(message, exchange: "", routingKey: configuration.deadLetterQueue)
                connection.settle([delivery.tag])
                metrics.deadLettered.increment()
                return
            } catch let error as AMQPError where error == .publishNacked {
                // The broker refused it (e.g. a full dead-letter queue): an unsettled delivery
                // would hold every later ack back, so keep trying.
                logger.error("dead-letter publish refused by the broker; retrying", metadata: ["retry.after": "\(delay)"])
                do {
                    try await cancelWhenGracefulShutdown { [delay] in try await Task.sleep(for: delay) }
                } catch {
                    return
                }
                delay = min(delay * 2, .seconds(5))
            } catch {
                // The connection is gone: this delivery is void, the broker redelivers the message.
                logger.error("dead-letter publish failed; the message stays in the queue", metadata: ["error": "\(error)"])
                return
            }
        }
    }
}
