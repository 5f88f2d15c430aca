import HTTPTypes
import HummingbirdWSClient
import Logging
import Synchronization

/// A WebSocket client for tests: text messages in a queue, messages out on demand.
final class WSTestClient: Sendable {
    let received = PieceQueue()
    private let outgoing: AsyncStream<String>.Continuation
    private let opened = PieceQueue()
    private let task: Task<Void, any Error>

    /// Connects; throws if the upgrade is refused.
    static func open(_ url: String, headers: HTTPFields = [:]) async throws -> WSTestClient {
        let client = WSTestClient(url: url, headers: headers)
        guard await client.opened.next(timeout: .seconds(10)) == "yes" else {
            client.close()
            throw TestFailure("upgrade refused")
        }
        return client
    }

    private init(url: String, headers: HTTPFields) {
        let (stream, outgoing) = AsyncStream.makeStream(of: String.self)
        self.outgoing = outgoing
        let received = self.received
        let opened = self.opened
        var logger = Logger(label: "test.ws")
        logger.logLevel = .critical
        task = Task {
            defer {
                opened.push("no")
                received.finish()
            }
            try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers), logger: logger) {
                inbound, outbound, _ in
                opened.push("yes")
                let writer = Task {
                    for await text in stream {
                        do { try await outbound.write(.text(text)) } catch { return }
                    }
                    try? await outbound.close(.normalClosure, reason: nil)
                }
                do {
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if case .text(let text) = message { received.push(text) }
                    }
                } catch {}
                writer.cancel()
            }
        }
    }

    func send(_ text: String) { outgoing.yield(text) }
    func close() { outgoing.finish() }

    /// Whether the server ended the connection within `timeout`.
    func closed(timeout: Duration = .seconds(10)) async -> Bool {
        await received.next(timeout: timeout) == nil && received.isFinished
    }
}
