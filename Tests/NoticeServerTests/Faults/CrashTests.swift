import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The built `notice-service` executable as a child process (for faults a process suffers).
final class ServiceProcess {
    let process = Process()
    let port: Int

    static var executable: URL {
        // Tests/NoticeServerTests/Faults/CrashTests.swift → package root → .build/debug/notice-service
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/notice-service")
    }

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
        var settings = TestServer.settings()
        settings["NOTICE_LOG_LEVEL"] = "error"
        let queue = settings["NOTICE_AMQP_QUEUE"]!
        let path = String(settings["NOTICE_DB_URL"]!.dropFirst("sqlite:".count))
        let port = Int.random(in: 20_000...29_999)
        let first = try ServiceProcess(settings: settings, port: port)
        try await first.waitUntilReady()

        // 5,000 notices, half of them without an id (those rely on the redelivery digest).
        let publisher = await TestBroker()
        let count = 5_000
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    if index >= 256 { try await group.next() }
                    let json = index.isMultiple(of: 2) ? #"{"id":\#(index + 1),"userId":1,"title":"n\#(index)"}"# : #"{"userId":1,"title":"n\#(index)"}"#
                    group.addTask { try await publisher.publish(json, to: queue) }
                }
                try await group.waitForAll()
            }
        }
        let store = try NoticeStoreReader(path: path)
        // Kill it mid-flow, once some notices are committed.
        let started = ContinuousClock.now
        while try await store.count() < 500, ContinuousClock.now - started < .seconds(30) {
            try await Task.sleep(for: .milliseconds(5))
        }
        first.kill(SIGKILL)
        let atCrash = try await store.count()
        try await publishing.value
        #expect(atCrash < count, "the crash should happen while notices still flow")

        let second = try ServiceProcess(settings: settings, port: port + 1)
        try await second.waitUntilReady()
        let deadline = ContinuousClock.now + .seconds(60)
        while try await store.count() < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await store.count() == count)
        #expect(try await store.distinctTitles() == count)
        // The queue is drained: nothing ready, nothing unacked.
        let line = try rabbitmqctl("list_queues", "-q", "name", "messages").split(separator: "\n").first { $0.hasPrefix(queue + "\t") }
        #expect(line.map(String.init) == "\(queue)\t0")
        second.kill(SIGTERM)
        await publisher.close()
        try await store.close()
    }
}

extension FaultTests {
    @Test func sigtermWhileNoticesFlowLosesNoneAndExitsZero() async throws {
        var settings = TestServer.settings()
        settings["NOTICE_LOG_LEVEL"] = "error"
        let queue = settings["NOTICE_AMQP_QUEUE"]!
        let path = String(settings["NOTICE_DB_URL"]!.dropFirst("sqlite:".count))
        let port = Int.random(in: 30_000...39_999)
        let first = try ServiceProcess(settings: settings, port: port)
        try await first.waitUntilReady()
        let client = try await StompTestClient.open(port: port)
        #expect(await client.connect(token: "alice")?.command == .connected)

        let publisher = await TestBroker()
        let count = 3_000
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    if index >= 128 { try await group.next() }
                    group.addTask { try await publisher.publish(#"{"id":\#(index + 1),"userId":1}"#, to: queue) }
                }
                try await group.waitForAll()
            }
        }
        let store = try NoticeStoreReader(path: path)
        let started = ContinuousClock.now
        while try await store.count() < 300, ContinuousClock.now - started < .seconds(30) {
            try await Task.sleep(for: .milliseconds(5))
        }
        first.kill(SIGTERM)
        #expect(first.process.terminationStatus == 0)
        #expect(first.process.terminationReason == .exit)
        // The session was told before the socket closed.
        #expect(await client.frames.next()?.headers["message"] == "server shutting down")
        try await publishing.value

        let second = try ServiceProcess(settings: settings, port: port + 1)
        try await second.waitUntilReady()
        let deadline = ContinuousClock.now + .seconds(60)
        while try await store.count() < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await store.count() == count)
        second.kill(SIGTERM)
        await publisher.close()
        try await store.close()
    }
}
