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
    let recorder: DeliveryRecorder
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

            let now = Date()
            let millis = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
            let createdAt = Self.rfc3339(millis: millis)
            var rows: [NoticeRow] = []
            var keys: Set<NoticeKey> = []
            var firstDelivery: Set<NoticeKey> = []
            for (index, (delivery, record)) in accepted.enumerated() {
                let push = record.isPushed(pushTargets: configuration.pushTargets)
                let recipients: [String?] =
                    switch record.audience {
                    case .broadcast: [nil]
                    case .users(let users): users
                    }
                for recipient in recipients {
                    let key = NoticeKey(noticeId: record.id, recipient: recipient)
                    // The same notice twice in one batch (a publisher retry) is one row.
                    guard keys.insert(key).inserted else { continue }
                    if !delivery.redelivered { firstDelivery.insert(key) }
                    rows.append(
                        NoticeRow(
                            noticeId: record.id,
                            recipient: recipient,
                            payload: record.payload(for: recipient, createdAt: createdAt),
                            createdAt: millis,
                            sourceKey: sourceKeys[index],
                            pushed: push
                        )
                    )
                }
            }
            let delivered = recorder.take()
            guard let (inserted, retried) = await retryingStore({ try await store.insert(rows, markingDelivered: delivered, at: millis) }) else {
                recorder.putBack(delivered)
                return
            }
            connection.settle(accepted.map(\.delivery.tag))
            // Pushed: what this insert stored. After a failed attempt, also what arrived for the
            // first time: that attempt may have committed after all (a PostgreSQL insert given up
            // at its deadline), so "already stored" can mean "stored by us and never pushed". A
            // redelivered notice found stored was pushed by whoever stored it.
            let notices = rows.filter { (inserted.contains($0.key) || (retried && firstDelivery.contains($0.key))) && $0.pushed }
                .map { PushNotice(key: $0.key, payload: $0.payload, consumedAt: consumedAt) }
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

    /// `2026-11-22T12:00:00.000Z`: UTC, milliseconds. Plain arithmetic (days to civil date,
    /// Howard Hinnant's algorithm): Foundation's Calendar cost 3 % of the pipeline's CPU here.
    static func rfc3339(millis: Int64) -> String {
        let (days, dayMillis) = millis.quotientAndRemainder(dividingBy: 86_400_000)
        let (day, milliOfDay) = dayMillis < 0 ? (days - 1, dayMillis + 86_400_000) : (days, dayMillis)
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let dayOfMonth = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func padded(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let seconds = milliOfDay / 1000
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(dayOfMonth, 2))T\(padded(seconds / 3600, 2)):"
            + "\(padded(seconds / 60 % 60, 2)):\(padded(seconds % 60, 2)).\(padded(milliOfDay % 1000, 3))Z"
    }
}
