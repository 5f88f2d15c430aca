import Foundation
import STOMP
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension FaultTests {
    /// Issue #6, store failure: PostgreSQL stops under a running service. Nothing is acked,
    /// consumption pauses, readiness says why, and when PostgreSQL is back the service
    /// resumes by itself: every notice stored once and delivered once.
    @Test func postgresStoppedPausesConsumptionAndItResumesByItself() async throws {
        let cluster = try LocalPostgresCluster.serving(try TestPostgres.serverURL())
        let database = try await TestPostgres.createDatabase()
        var (settings, queue, _) = ServiceProcess.freshSettings()
        settings["NOTICE_DB_URL"] = database.url
        let port = Int.random(in: 28_000...31_998)
        let service = try ServiceProcess(settings: settings, port: port)
        defer { service.kill(SIGTERM) }
        try await service.waitUntilReady()
        let alice = try await StompTestClient.open(port: port)
        defer { alice.close() }
        #expect(await alice.connect(token: "alice")?.command == .connected)
        #expect(await alice.subscribe("/notice/1/remind")?.command == .receipt)
        let publisher = await TestBroker()
        for id in 1...5 { try await publisher.publish(#"{"id":\#(id),"userId":1}"#, to: queue) }
        for _ in 1...5 { #expect(await alice.frames.next()?.command == .message) }

        try await cluster.whileStopped {
            // Readiness says why (its own probe of the store fails, within its deadline).
            var ready = try await readiness(port: port)
            let deadline = ContinuousClock.now + .seconds(30)
            while ready.status == 200, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                ready = try await readiness(port: port)
            }
            #expect(ready.status == 503)
            #expect(ready.body.contains(#""store":"PostgreSQL"#), "\(ready.body)")

            for id in 6...25 { try await publisher.publish(#"{"id":\#(id),"userId":1}"#, to: queue) }
            // Consumed (up to the prefetch), but none acked: all 20 still belong to the queue.
            var counts = try await queueCounts(queue)
            let consumed = ContinuousClock.now + .seconds(30)
            while counts.unacked == 0, ContinuousClock.now < consumed {
                try await Task.sleep(for: .milliseconds(200))
                counts = try await queueCounts(queue)
            }
            #expect(counts.ready + counts.unacked == 20, "\(counts)")
            #expect(counts.unacked > 0, "the service should hold the deliveries while it retries: \(counts)")
            #expect(await alice.frames.next(timeout: .milliseconds(200)) == nil)
            // The pipeline's own failure shows once its first attempt gives up (5 s, plus up to
            // 2 s asking the server why).
            let failing = ContinuousClock.now + .seconds(40)
            repeat {
                ready = try await readiness(port: port)
                if ready.body.contains("PostgreSQL insert failed") { break }
                try await Task.sleep(for: .milliseconds(200))
            } while ContinuousClock.now < failing
            #expect(ready.status == 503)
            #expect(ready.body.contains("PostgreSQL insert failed: cannot connect"), "\(ready.body)")
            let paused = try await queueCounts(queue)
            #expect(paused.ready + paused.unacked == 20)

            // A state change the store cannot take: without a receipt, logged, and the session
            // goes on; with one, ERROR naming it instead (a RECEIPT means stored).
            let tab = try await StompTestClient.open(port: port)
            defer { tab.close() }
            #expect(await tab.connect(token: "alice")?.command == .connected)
            let readAll = Array(#"{"action":"read","all":true}"#.utf8)
            tab.send(StompFrame(.send, headers: ["destination": "/app/notices/state"], body: readAll))
            tab.send(StompFrame(.send, headers: ["destination": "/app/notices/state", "receipt": "r-read"], body: readAll))
            let refused = await tab.frames.next(timeout: .seconds(60))
            #expect(refused?.command == .error)
            #expect(refused?.headers["message"] == "store unavailable")
            #expect(refused?.headers["receipt-id"] == "r-read")
        }

        // Back by itself: the held notices are stored and pushed, readiness recovers.
        var received = 0
        while received < 20, let frame = await alice.frames.next(timeout: .seconds(60)) {
            #expect(frame.command == .message)
            received += 1
        }
        #expect(received == 20)
        // Each once: a notice published now is the next frame.
        try await publisher.publish(#"{"id":26,"userId":1}"#, to: queue)
        #expect(await alice.noticeIds(throughNotice: "26") == ["26"])
        let deadline = ContinuousClock.now + .seconds(30)
        while try await readiness(port: port).status != 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await readiness(port: port).status == 200)
        #expect(try await TestPostgres.psql(database.url, "SELECT count(*) FROM notice_recipient") == "26")
        var counts = try await queueCounts(queue)
        let drained = ContinuousClock.now + .seconds(30)
        while counts.ready + counts.unacked > 0, ContinuousClock.now < drained {
            try await Task.sleep(for: .milliseconds(100))
            counts = try await queueCounts(queue)
        }
        #expect(counts.ready + counts.unacked == 0, "\(counts)")
        await publisher.close()
        try? await TestPostgres.dropDatabase(database.name)
    }

    func readiness(port: Int) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/health/ready")!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

}

/// The local Debian PostgreSQL cluster behind a test URL, stopped and started with
/// `pg_ctlcluster` (root). Only the fault tests use it.
struct LocalPostgresCluster {
    let version: String
    let name: String
    let port: Int

    /// The cluster listening on the URL's port; throws if the URL is not local or no
    /// cluster of this machine serves it.
    static func serving(_ url: String) throws -> LocalPostgresCluster {
        guard let components = URLComponents(string: url), let host = components.host,
            ["127.0.0.1", "localhost", "::1"].contains(host)
        else {
            throw TestFailure("the PostgreSQL fault test stops a local cluster; NOTICE_TEST_POSTGRES_URL is not local")
        }
        let port = components.port ?? 5432
        let listing = try run("/usr/bin/pg_lsclusters", ["-h"])
        for line in listing.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 3, Int(fields[2]) == port {
                return LocalPostgresCluster(version: String(fields[0]), name: String(fields[1]), port: port)
            }
        }
        throw TestFailure("no local PostgreSQL cluster on port \(port) (pg_lsclusters: \(listing))")
    }

    /// Stops the cluster, runs `body`, and starts the cluster again whatever `body` did.
    /// A watchdog shell starts it too, three minutes on, if this process dies first.
    func whileStopped(_ body: () async throws -> Void) async throws {
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", "sleep 180 && exec pg_ctlcluster \(version) \(name) start </dev/null >/dev/null 2>&1"]
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try watchdog.run()
        // SIGKILL: SIGTERM was seen not to reach it (ignored in the child); its `sleep` ends alone.
        defer { kill(watchdog.processIdentifier, SIGKILL) }
        try Self.control("stop", "-m", "fast", cluster: self)
        do {
            try await body()
        } catch {
            try? await start()
            throw error
        }
        try await start()
    }

    func start() async throws {
        try? Self.control("start", cluster: self)
        let deadline = ContinuousClock.now + .seconds(60)
        while (try? Self.run("/usr/bin/pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port), "-t", "1"])) == nil {
            guard ContinuousClock.now < deadline else { throw TestFailure("PostgreSQL \(version)/\(name) did not start again") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Runs `pg_ctlcluster VERSION NAME <action>` with every descriptor above 2 closed first:
    /// Foundation's `Process` sees a child end only when all holders of a descriptor it hands
    /// down have closed it, and the server `start` leaves running would hold it for good (so
    /// `waitUntilExit()` would never return). Output goes nowhere for the same reason.
    static func control(_ action: String, _ options: String..., cluster: LocalPostgresCluster) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments =
            [
                "-c",
                #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; exec pg_ctlcluster "$@""#,
                "pg_ctlcluster", cluster.version, cluster.name, action,
            ] + options
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("pg_ctlcluster \(cluster.version) \(cluster.name) \(action) exited with \(process.terminationStatus)")
        }
    }

    /// Runs a command; throws with its output when it exits non-zero.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw TestFailure("\(path) \(arguments.joined(separator: " ")): \(text)") }
        return text
    }
}
