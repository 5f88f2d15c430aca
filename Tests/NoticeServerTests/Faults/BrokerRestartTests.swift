import Foundation
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
        try await Task.sleep(for: .milliseconds(800))
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
        #expect(await alice.frames.next(timeout: .milliseconds(500)) == nil)
        #expect(try await server.get("/health/ready").status == 200)
        #expect(try await server.storedCount() == count)
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
