import CoreMetrics
import Foundation
import Logging
import NoticeCore
import NoticeStore
import RabbitMQ
import Synchronization
import Testing

@testable import NoticeServer

final class CollectingSink: NoticeSink {
    let notices = Mutex<[PushNotice]>([])
    func push(_ notice: PushNotice) { notices.withLock { $0.append(notice) } }
    func close(message: String, detail: String) {}
}

/// The pipeline's batch logic against a real SQLite file (no broker needed: deliveries are built here).
@Suite struct IngestPipelineTests {
    func makePipeline(
        wrap: (SQLiteNoticeStore) -> any NoticeStore = { $0 }
    ) async throws -> (IngestPipeline, SQLiteNoticeStore, CollectingSink) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)/n.sqlite").path
        let store = try SQLiteNoticeStore(path: path)
        try await store.migrate()
        var configuration = NoticeServiceConfiguration()
        configuration.nodeId = "unit"
        let hub = DeliveryHub(maxSessionsPerUser: 4)
        let sink = CollectingSink()
        _ = hub.register(sink, userId: "1")
        let clock = Mutex<Int64>(1_800_000_000_000)
        let pipeline = IngestPipeline(
            connection: RabbitMQConnection(configuration: .init(), topology: .init(), logger: Logger(label: "unit")),
            store: wrap(store),
            hub: hub,
            marks: DeliveryMarks(),
            relay: nil,
            health: ServiceHealth(),
            configuration: configuration,
            ids: NoticeIDGenerator(nodeId: "unit") {
                clock.withLock {
                    $0 += 1
                    return $0
                }
            },
            metrics: ServiceMetrics(factory: NOOPMetricsHandler.instance),
            logger: Logger(label: "unit")
        )
        return (pipeline, store, sink)
    }

    func delivery(_ json: String, tag: UInt64, redelivered: Bool, messageId: String? = nil) -> AMQPDelivery {
        AMQPDelivery(
            tag: DeliveryTag(connection: 1, value: tag),
            redelivered: redelivered,
            exchange: "",
            routingKey: "q",
            message: AMQPMessage(body: Array(json.utf8), properties: AMQPProperties(messageId: messageId))
        )
    }

    @Test func deliveredMarksRideAlongInTheNextBatchsTransaction() async throws {
        let (pipeline, store, _) = try await makePipeline()
        await pipeline.process([delivery(#"{"id":1,"userId":1,"title":"a"}"#, tag: 1, redelivered: false)])
        let first = NoticeKey(noticeId: 1, recipient: "1")
        #expect(try await store.row(first)?.deliveredAt == nil)
        // A session wrote it: the mark waits in the ledger; no recorder flushes it here.
        pipeline.marks.record(first)
        await pipeline.process([delivery(#"{"id":2,"userId":1,"title":"b"}"#, tag: 2, redelivered: false)])
        #expect(try await store.row(first)?.deliveredAt != nil)
        #expect(try await store.row(NoticeKey(noticeId: 2, recipient: "1"))?.deliveredAt == nil)
        #expect(pipeline.marks.take().isEmpty)
        try await store.close()
    }

    @Test func aRedeliveredRecordWithoutIdIsStoredAndPushedOnce() async throws {
        let (pipeline, store, sink) = try await makePipeline()
        await pipeline.process([delivery(#"{"userIds":[1,2],"title":"no id"}"#, tag: 1, redelivered: false)])
        #expect(try await store.count() == 2)
        // The same message again, as the broker redelivers it after a crash before the ack.
        await pipeline.process([delivery(#"{"userIds":[1,2],"title":"no id"}"#, tag: 1, redelivered: true)])
        #expect(try await store.count() == 2)
        #expect(sink.notices.withLock { $0.count } == 1)
        // A new publish of the same text is a new notice; so is one with another message-id.
        await pipeline.process([delivery(#"{"userIds":[1,2],"title":"no id"}"#, tag: 2, redelivered: false)])
        await pipeline.process([delivery(#"{"userIds":[1,2],"title":"no id"}"#, tag: 3, redelivered: true, messageId: "other")])
        #expect(try await store.count() == 6)
        try await store.close()
    }

    @Test func anInsertThatCommittedAfterReportingFailureIsStillPushed() async throws {
        // The first insert commits and then fails, as a PostgreSQL insert abandoned at its
        // deadline does when the server commits it late: the retry finds every row stored.
        let (pipeline, store, sink) = try await makePipeline { LateCommitStore(store: $0) }
        await pipeline.process([
            delivery(#"{"id":901,"userId":1}"#, tag: 1, redelivered: false),
            delivery(#"{"id":902,"userId":1}"#, tag: 2, redelivered: false),
        ])
        #expect(try await store.count() == 2)
        #expect(sink.notices.withLock { $0.map(\.key.noticeId) } == [901, 902])
        // A redelivery of a stored notice is still not pushed again, failure or not.
        let (again, againStore, againSink) = try await makePipeline { LateCommitStore(store: $0) }
        _ = try await againStore.insert([NoticeRow(noticeId: 903, recipient: "1", payload: "{}", createdAt: 1, sourceKey: nil)])
        await again.process([delivery(#"{"id":903,"userId":1}"#, tag: 1, redelivered: true)])
        #expect(againSink.notices.withLock { $0.isEmpty })
        try await store.close()
        try await againStore.close()
    }

    @Test func createdAtMatchesFoundationsRFC3339() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        // Epoch, leap days, century and year ends, now, and a spread of instants up to 2200.
        var instants: [Int64] = [0, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, 1_704_067_199_999, 1_709_164_800_123]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            instants.append(Int64(state >> 1) % 7_258_118_400_000)
        }
        for millis in instants {
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
            #expect(NoticeTimestamp.rfc3339(millis: millis) == expected, "\(millis)")
        }
    }

    @Test func theSameNoticeTwiceInOneBatchIsOneRowAndOnePush() async throws {
        let (pipeline, store, sink) = try await makePipeline()
        await pipeline.process([
            delivery(#"{"id":777,"userId":1}"#, tag: 1, redelivered: false),
            delivery(#"{"id":777,"userId":1}"#, tag: 2, redelivered: false),
        ])
        #expect(sink.notices.withLock { $0.map(\.key.noticeId) } == [777])
        #expect(try await store.count() == 1)
        try await store.close()
    }

    @Test func aBatchMixesStoredAndRejectedMessagesInOrder() async throws {
        let (pipeline, store, sink) = try await makePipeline()
        await pipeline.process([
            delivery(#"{"id":1,"userId":1}"#, tag: 1, redelivered: false),
            delivery(#"{"id":2,"userId":1,"sendTarget":"MAIL"}"#, tag: 2, redelivered: false),
            delivery(#"{"id":3,"userId":1}"#, tag: 3, redelivered: false),
        ])
        #expect(sink.notices.withLock { $0.map(\.key.noticeId) } == [1, 3])
        #expect(try await store.count() == 3)
        try await store.close()
    }
}

@Suite struct RetentionServiceTests {
    @Test func aPassPurgesEverythingOlderThanTheRetentionInBatches() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("retention-\(UUID().uuidString)/n.sqlite").path
        let store = try SQLiteNoticeStore(path: path)
        try await store.migrate()
        let now = Date()
        let nowMillis = Int64(now.timeIntervalSince1970 * 1000)
        let day: Int64 = 86_400_000
        let rows =
            (0..<2_500).map { NoticeRow(noticeId: Int64($0), recipient: "u", payload: "{}", createdAt: nowMillis - 91 * day) }
            + (0..<10).map { NoticeRow(noticeId: Int64(10_000 + $0), recipient: "u", payload: "{}", createdAt: nowMillis - 89 * day) }
        _ = try await store.insert(rows)
        let service = RetentionService(store: store, retention: .seconds(90 * 86_400), logger: Logger(label: "unit"))
        #expect(await service.purgeOnce(now: now) == 2_500)
        #expect(try await store.count() == 10)
        try await store.close()
    }
}

/// A store whose first insert commits and then throws.
final class LateCommitStore: NoticeStore {
    struct Timeout: Error {}
    let store: SQLiteNoticeStore
    let failed = Atomic<Bool>(false)

    init(store: SQLiteNoticeStore) { self.store = store }

    func migrate() async throws { try await store.migrate() }
    func insert(_ rows: [NoticeRow], markingDelivered delivered: [NoticeKey], at millis: Int64) async throws -> Set<NoticeKey> {
        let inserted = try await store.insert(rows, markingDelivered: delivered, at: millis)
        if !failed.exchange(true, ordering: .relaxed) { throw Timeout() }
        return inserted
    }
    func noticeIds(forSourceKeys keys: [String]) async throws -> [String: Int64] { try await store.noticeIds(forSourceKeys: keys) }
    func markDelivered(_ keys: [NoticeKey], at millis: Int64) async throws { try await store.markDelivered(keys, at: millis) }
    func apply(_ command: InboxCommand, userId: String, at millis: Int64) async throws -> Int {
        try await store.apply(command, userId: userId, at: millis)
    }
    func counts(userId: String, category: String?, cap: Int) async throws -> NoticeCounts {
        try await store.counts(userId: userId, category: category, cap: cap)
    }
    func recall(noticeId: Int64) async throws -> RecalledNotice? { try await store.recall(noticeId: noticeId) }
    func receipts(noticeId: Int64, after: String?, limit: Int) async throws -> NoticeReceipts? {
        try await store.receipts(noticeId: noticeId, after: after, limit: limit)
    }
    func undelivered(userId: String, limit: Int) async throws -> [NoticeRow] { try await store.undelivered(userId: userId, limit: limit) }
    func notices(_ query: NoticeQuery) async throws -> [StoredNoticeRow] { try await store.notices(query) }
    func row(_ key: NoticeKey) async throws -> StoredNoticeRow? { try await store.row(key) }
    func purge(createdBefore millis: Int64, limit: Int) async throws -> Int { try await store.purge(createdBefore: millis, limit: limit) }
    func count() async throws -> Int { try await store.count() }
    func ping() async throws { try await store.ping() }
    func close() async throws { try await store.close() }
}
