import Foundation
import NoticeServer
import STOMP
import Synchronization
import Testing

/// Faults done to the real broker. These stop RabbitMQ for everyone, so scripts/test runs
/// them alone, after the other suites (`--filter FaultTests`).
@Suite(.serialized) struct FaultTests {
    @Test func aBrokerRestartWhileNoticesFlowLosesNothingAndKeepsSessions() async throws {
        let server = try await TestServer.start()
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let publisher = await TestBroker()
        let count = 300
        let queue = server.configuration.queue

        // Publish 300 notices at about 100/s; each is retried until the broker confirms it.
        let publishing = Task {
            for id in 1...count {
                while true {
                    do {
                        try await publisher.publish(#"{"id":\#(id),"userId":1,"title":"n\#(id)"}"#, to: queue)
                        break
                    } catch {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        // Mid-flow: once some are stored (publishing takes 3 s at least).
        try await server.waitForStored(30)
        _ = try await rabbitmqctl("stop_app")
        try await Task.sleep(for: .seconds(2))
        _ = try await rabbitmqctl("start_app")
        _ = try await rabbitmqctl("await_startup")
        try await publishing.value

        var ids: [Int] = []
        while ids.count < count, let frame = await alice.frames.next(timeout: .seconds(30)) {
            guard frame.command == .message, let body = frame.bodyText,
                let range = body.range(of: #""id":""#), let id = Int(body[range.upperBound...].prefix { $0.isNumber })
            else {
                Issue.record("unexpected frame \(frame.command) \(frame.headers)")
                break
            }
            ids.append(id)
        }
        #expect(ids.count == count)
        #expect(Set(ids).count == count)
        // Nothing more (no redelivery pushed twice): a notice published now is the next frame.
        try await publisher.publish(#"{"id":\#(count + 1),"userId":1,"title":"marker"}"#, to: queue)
        #expect(await alice.noticeIds(throughNotice: String(count + 1)) == [String(count + 1)])
        #expect(try await server.get("/health/ready").status == 200)
        #expect(try await server.storedCount() == count + 1)
        alice.close()
        await publisher.close()
        try await server.stop()
    }
}

/// Runs rabbitmqctl (as the Debian wrapper expects, from root) and returns its output. Off
/// Swift's cooperative thread pool: each call blocks its thread for a second or two, and on
/// two cores a few of them would stall every other task of the test process (store deadlines
/// among them).
func rabbitmqctl(_ arguments: String...) async throws -> String {
    try await offThePool { try rabbitmqctl(arguments: arguments) }
}

/// A queue's ready and unacknowledged message counts, as the broker reports them.
func queueCounts(_ queue: String) async throws -> (ready: Int, unacked: Int) {
    let line = try await rabbitmqctl("list_queues", "-q", "name", "messages_ready", "messages_unacknowledged")
        .split(separator: "\n").first { $0.hasPrefix(queue + "\t") }
    let fields = line?.split(separator: "\t") ?? []
    guard fields.count == 3, let ready = Int(fields[1]), let unacked = Int(fields[2]) else {
        throw TestFailure("queue \(queue) not listed by rabbitmqctl")
    }
    return (ready, unacked)
}

func rabbitmqctl(arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/rabbitmqctl")
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["HOME": "/var/lib/rabbitmq"]) { $1 }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
