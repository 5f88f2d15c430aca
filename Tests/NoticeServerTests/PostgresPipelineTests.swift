import Foundation
import Logging
import NoticeCore
import NoticeStore
import NoticeTesting
import STOMP
import Testing

@testable import NoticeServer

/// Queue → PostgreSQL → STOMP, with the real broker and a fresh database per test
/// (`NOTICE_TEST_POSTGRES_URL`, which scripts/test sets).
@Suite(.serialized) struct PostgresPipelineTests {
    func ids(_ frames: [StompFrame]) -> [String] {
        frames.compactMap { frame in
            guard let body = frame.bodyText, let range = body.range(of: #""id":""#) else { return nil }
            return String(body[range.upperBound...].prefix { $0 != "\"" })
        }
    }

    func frames(of client: StompTestClient, count: Int) async -> [StompFrame] {
        var frames: [StompFrame] = []
        while frames.count < count, let frame = await client.frames.next(timeout: .seconds(30)) { frames.append(frame) }
        return frames
    }

    @Test func noticesFromTheQueueAreStoredInPostgresAndDelivered() async throws {
        let database = try await TestPostgres.createDatabase()
        var configuration = TestServer.configuration()
        configuration.database = try database.configuration
        let server = try await TestServer.start(configuration)
        #expect(try await server.get("/health/ready").body.contains(#""store":"ok""#))
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let broker = await TestBroker()
        try await broker.publish(#"{"id":501,"userId":1,"title":"with an id"}"#, to: server.configuration.queue)
        try await broker.publish(#"{"userId":1,"title":"without an id"}"#, to: server.configuration.queue)
        try await broker.publish(#"{"id":502,"userIds":[1,2],"title":"two users"}"#, to: server.configuration.queue)
        try await broker.publish(#"{"id":501,"userId":1,"title":"with an id"}"#, to: server.configuration.queue)

        let received = await frames(of: alice, count: 3)
        #expect(received.map(\.command) == [.message, .message, .message])
        #expect(ids(received).first == "501")
        #expect(ids(received).last == "502")
        // The second 501 was not pushed: a later notice is the next frame.
        try await broker.publish(#"{"id":503,"userId":1,"title":"marker"}"#, to: server.configuration.queue)
        #expect(await alice.noticeIds(throughNotice: "503") == ["503"])

        let store = RunningPostgresStore(configuration: try PostgresNoticeStore.Configuration(url: database.url))
        #expect(try await store.count() == 5)
        let stored = try #require(try await store.row(NoticeKey(noticeId: 501, recipient: "1")))
        #expect(Array(stored.row.payload.utf8) == received[0].body)
        #expect(try await store.row(NoticeKey(noticeId: 502, recipient: "2")) != nil)

        alice.close()
        await broker.close()
        try await server.stop()
        try await store.close()
        try await TestPostgres.dropDatabase(database.name)
    }

    /// The insert commits, then the broker connection drops before the ack: the broker
    /// redelivers, and the redelivery stores nothing and pushes nothing a second time,
    /// for notices with an id and without one (found again by their source key).
    @Test func aRedeliveryAfterTheCommitStoresNothingTwice() async throws {
        let database = try await TestPostgres.createDatabase()
        var configuration = TestServer.configuration()
        configuration.database = try database.configuration
        configuration.logLevel = .critical
        let server = try await TestServer.start(configuration)
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let broker = await TestBroker()

        // Another session holds a lock that blocks inserts (not reads) until it commits.
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        locker.arguments = [database.url, "-qAtX", "-v", "ON_ERROR_STOP=1"]
        let input = Pipe()
        locker.standardInput = input
        locker.standardOutput = FileHandle.nullDevice
        try locker.run()
        defer { if locker.isRunning { locker.terminate() } }
        input.fileHandleForWriting.write(Data("BEGIN;\nLOCK TABLE notice_body, notice_recipient IN EXCLUSIVE MODE;\nSELECT 1;\n".utf8))
        let locked = """
            SELECT count(*) FROM pg_locks JOIN pg_class ON pg_class.oid = pg_locks.relation
            WHERE pg_class.relname = 'notice_recipient' AND pg_locks.mode = 'ExclusiveLock' AND pg_locks.granted
            """
        let lockDeadline = ContinuousClock.now + .seconds(30)
        while try await TestPostgres.psql(database.url, locked) != "1", ContinuousClock.now < lockDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(try await TestPostgres.psql(database.url, locked) == "1")

        for index in 1...6 {
            let body = index.isMultiple(of: 2) ? #"{"id":\#(900 + index),"userId":1,"title":"n\#(index)"}"# : #"{"userId":1,"title":"n\#(index)"}"#
            try await broker.publish(body, to: server.configuration.queue)
        }
        // Wait until the service's insert waits for the lock: consumed, not committed, not acked.
        let blocked =
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO notice%'"
        let deadline = ContinuousClock.now + .seconds(30)
        while try await TestPostgres.psql(database.url, blocked) != "1", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await TestPostgres.psql(database.url, blocked) == "1")

        // The broker drops the service's connection: its deliveries go back to the queue, redelivered.
        let name = "notice-service \(server.configuration.nodeId)"
        let line = try #require(
            try await rabbitmqctl("list_connections", "-q", "pid", "client_properties").split(separator: "\n").first { $0.contains(name) }
        )
        let pid = try #require(line.split(separator: "\t").first)
        _ = try await rabbitmqctl("close_connection", String(pid), "test: connection lost before the ack")
        // Now the insert commits: its ack goes to a connection that is gone.
        input.fileHandleForWriting.write(Data("COMMIT;\n".utf8))
        try input.fileHandleForWriting.close()
        locker.waitUntilExit()

        let received = await frames(of: alice, count: 6)
        #expect(received.count == 6)
        #expect(Set(ids(received)).count == 6)
        // Nothing a second time: the redeliveries come back to the queue ahead of a notice
        // published now, so when it arrives they have been handled.
        try await broker.publish(#"{"id":999,"userId":1,"title":"marker"}"#, to: server.configuration.queue)
        #expect(await alice.noticeIds(throughNotice: "999") == ["999"])

        let store = RunningPostgresStore(configuration: try PostgresNoticeStore.Configuration(url: database.url))
        #expect(try await store.count() == 7)
        #expect(
            try await TestPostgres.psql(
                database.url,
                "SELECT count(DISTINCT b.payload::json->>'title') FROM notice_recipient r JOIN notice_body b USING (notice_id)"
            ) == "7"
        )
        // Everything was acked in the end: the queue is empty.
        let queued = ContinuousClock.now + .seconds(30)
        var remaining = ""
        repeat {
            try await Task.sleep(for: .milliseconds(100))
            remaining =
                try await rabbitmqctl("list_queues", "-q", "name", "messages").split(separator: "\n")
                .first { $0.hasPrefix(server.configuration.queue + "\t") }.map(String.init) ?? ""
        } while remaining != "\(server.configuration.queue)\t0" && ContinuousClock.now < queued
        #expect(remaining == "\(server.configuration.queue)\t0")

        alice.close()
        await broker.close()
        try await server.stop()
        try await store.close()
        try await TestPostgres.dropDatabase(database.name)
    }
}
