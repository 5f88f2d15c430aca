import Foundation
import NoticeCore
import NoticeStore
import NoticeTesting
import STOMP
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The built `notice-service` executable as a child process (for faults a process suffers).
final class ServiceProcess {
    let process = Process()
    let port: Int

    /// Settings for a fresh queue and SQLite file; also the queue's name and the file's path.
    static func freshSettings() -> (settings: [String: String], queue: String, path: String) {
        var settings = TestServer.settings()
        settings["NOTICE_LOG_LEVEL"] = "error"
        return (settings, settings["NOTICE_AMQP_QUEUE"]!, String(settings["NOTICE_DB_URL"]!.dropFirst("sqlite:".count)))
    }

    static var executable: URL {
        // Tests/NoticeServerTests/Faults/CrashTests.swift → package root → .build/debug/notice-service
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/notice-service")
    }

    /// - Parameter port: a fixed port (a restart must find the same one), chosen below the
    ///   kernel's ephemeral range (32768–60999), where any client socket may already hold it.
    init(settings: [String: String], port: Int) throws {
        self.port = port
        process.executableURL = Self.executable
        process.arguments = ["serve"]
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("NOTICE_") }
        environment.merge(settings) { $1 }
        environment["NOTICE_HTTP_PORT"] = String(port)
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let (_, response) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/health/ready")!),
                (response as? HTTPURLResponse)?.statusCode == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("service on port \(port) not ready")
    }

    func kill(_ signal: Int32) {
        Foundation.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }
}

extension FaultTests {
    @Test func aCrashWhileNoticesFlowLosesNothingAndStoresEachOnce() async throws {
        let (settings, queue, path) = ServiceProcess.freshSettings()
        let port = Int.random(in: 20_000...23_998)
        let first = try ServiceProcess(settings: settings, port: port)
        try await first.waitUntilReady()

        // 5,000 notices, half of them without an id (those rely on the redelivery digest).
        let publisher = await TestBroker()
        let count = 5_000
        let bodies = (0..<count).map { index in
            index.isMultiple(of: 2) ? #"{"id":\#(index + 1),"userId":1,"title":"n\#(index)"}"# : #"{"userId":1,"title":"n\#(index)"}"#
        }
        let publishing = Task { try await publisher.publishAll(bodies, to: queue, window: 256) }
        let store = try NoticeStoreReader(path: path)
        // Kill it mid-flow, once some notices are committed.
        try await store.waitForCount(500, timeout: .seconds(30))
        first.kill(SIGKILL)
        let atCrash = try await store.count()
        try await publishing.value
        #expect(atCrash < count, "the crash should happen while notices still flow")

        let second = try ServiceProcess(settings: settings, port: port + 1)
        try await second.waitUntilReady()
        try await store.waitForCount(count, timeout: .seconds(60))
        // Nothing stored twice: a notice published now comes after every redelivery in the
        // queue, so once it is stored they have all been handled.
        try await publisher.publish(#"{"id":999999,"userId":1,"title":"marker"}"#, to: queue)
        try await store.waitForCount(count + 1, timeout: .seconds(60))
        #expect(try await store.count() == count + 1)
        #expect(try store.distinctTitles() == count + 1)
        // The queue is drained: nothing ready, nothing unacked (acks follow commits).
        var counts = try await queueCounts(queue)
        let drained = ContinuousClock.now + .seconds(30)
        while counts.ready + counts.unacked > 0, ContinuousClock.now < drained {
            try await Task.sleep(for: .milliseconds(100))
            counts = try await queueCounts(queue)
        }
        #expect(counts.ready + counts.unacked == 0, "\(counts)")
        second.kill(SIGTERM)
        await publisher.close()
        try await store.close()
    }
}

extension FaultTests {
    /// On PostgreSQL too: the store's pool is a service of the group, stopped after the
    /// pipeline has committed and acked what was in flight.
    @Test(arguments: TestServer.Store.allCases)
    func sigtermWhileNoticesFlowLosesNoneAndExitsZero(store kind: TestServer.Store) async throws {
        var (settings, queue, path) = ServiceProcess.freshSettings()
        let store: any NoticeStore
        var database: String?
        switch kind {
        case .sqlite:
            store = try SQLiteNoticeStore(path: path)
        case .postgres:
            let created = try await TestPostgres.createDatabase()
            settings["NOTICE_DB_URL"] = created.url
            database = created.name
            store = RunningPostgresStore(configuration: try PostgresNoticeStore.Configuration(url: created.url))
        }
        let port = Int.random(in: 24_000...27_998)
        let first = try ServiceProcess(settings: settings, port: port)
        try await first.waitUntilReady()
        let client = try await StompTestClient.open(port: port)
        #expect(await client.connect(token: "alice")?.command == .connected)

        let publisher = await TestBroker()
        let count = 3_000
        let bodies = (0..<count).map { #"{"id":\#($0 + 1),"userId":1}"# }
        let publishing = Task { try await publisher.publishAll(bodies, to: queue, window: 128) }
        try await store.waitForCount(300, timeout: .seconds(30))
        first.kill(SIGTERM)
        #expect(first.process.terminationStatus == 0)
        #expect(first.process.terminationReason == .exit)
        // The session was told before the socket closed.
        #expect(await client.frames.next()?.headers["message"] == "server shutting down")
        try await publishing.value

        let second = try ServiceProcess(settings: settings, port: port + 1)
        try await second.waitUntilReady()
        #expect(try await store.waitForCount(count, timeout: .seconds(60)) == count)
        second.kill(SIGTERM)
        #expect(second.process.terminationStatus == 0)
        await publisher.close()
        try await store.close()
        if let database { try await TestPostgres.dropDatabase(database) }
    }
}
