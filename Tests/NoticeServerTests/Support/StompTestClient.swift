import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import STOMP
import Synchronization

/// A STOMP-over-WebSocket client for tests: frames in a queue, frames out on demand.
final class StompTestClient: Sendable {
    let frames = TestQueue<StompFrame>()
    let decodeErrors = TestQueue<StompError>()
    let heartBeats = Counter()
    private let outgoing: AsyncStream<String>.Continuation
    private let task: Task<Void, any Error>
    private let opened = TestQueue<Bool>()

    /// Connects the WebSocket; throws if the upgrade is refused.
    static func open(port: Int, path: String = "/ws", headers: HTTPFields = [:]) async throws -> StompTestClient {
        let client = StompTestClient(url: "ws://127.0.0.1:\(port)\(path)", headers: headers)
        guard await client.opened.next(timeout: .seconds(30)) == true else {
            client.close()
            _ = try await client.task.value
            throw WebSocketClientError.webSocketUpgradeFailed
        }
        return client
    }

    private init(url: String, headers: HTTPFields) {
        let (stream, outgoing) = AsyncStream.makeStream(of: String.self)
        self.outgoing = outgoing
        let frames = self.frames
        let decodeErrors = self.decodeErrors
        let heartBeats = self.heartBeats
        let opened = self.opened
        var logger = Logger(label: "test.ws-client")
        logger.logLevel = .critical
        task = Task {
            defer {
                opened.push(false)
                frames.finish()
            }
            try await WebSocketClient.connect(
                url: url,
                configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers),
                logger: logger
            ) { inbound, outbound, _ in
                opened.push(true)
                let writer = Task {
                    for await text in stream {
                        do { try await outbound.write(.text(text)) } catch { return }
                    }
                    try? await outbound.close(.normalClosure, reason: nil)
                }
                var decoder = StompDecoder(version: .v1_2, limits: .init(maxFrameBytes: 1 << 20, maxHeaders: 1000))
                do {
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        switch message {
                        case .text(let text): decoder.append(Array(text.utf8))
                        case .binary(let buffer): decoder.append(buffer.readableBytesView)
                        }
                        while let output = try decoder.next() {
                            switch output {
                            case .heartBeat: heartBeats.value.add(1, ordering: .relaxed)
                            case .frame(let frame): frames.push(frame)
                            }
                        }
                    }
                } catch let error as StompError {
                    decodeErrors.push(error)
                } catch {}
                writer.cancel()
            }
        }
    }

    func send(_ frame: StompFrame, version: StompVersion = .v1_2) {
        sendRaw(String(decoding: StompEncoder.encode(frame, version: version), as: UTF8.self))
    }

    func sendRaw(_ text: String) { outgoing.yield(text) }

    func close() { outgoing.finish() }

    /// Sends CONNECT and returns the server's answer (CONNECTED or ERROR).
    func connect(token: String?, acceptVersion: String = "1.2", heartBeat: String = "0,0") async -> StompFrame? {
        var headers: StompHeaders = ["accept-version": acceptVersion, "heart-beat": heartBeat, "host": "localhost"]
        if let token { headers.add("Authorization", "Bearer \(token)") }
        send(StompFrame(.connect, headers: headers))
        return await frames.next()
    }

    /// Subscribes and waits for the receipt; returns the frame the server answered with.
    @discardableResult
    func subscribe(_ destination: String, id: String = "sub-0", extra: StompHeaders = [:]) async -> StompFrame? {
        var headers: StompHeaders = ["id": id, "destination": destination, "receipt": "r-\(id)"]
        for field in extra { headers.add(field.name, field.value) }
        send(StompFrame(.subscribe, headers: headers))
        return await frames.next()
    }

    /// The frames received up to and including the MESSAGE of notice `markerId`; all of them
    /// if it does not come within `timeout` (or the connection ends first).
    ///
    /// The marker is a notice published after the ones under test: a connection receives in
    /// order, and replay frames precede live ones, so anything else that is coming (a
    /// duplicate, a notice that should not be replayed) has come when the marker does. That is
    /// an absence check without a quiet window.
    func frames(throughNotice markerId: String, timeout: Duration = .seconds(30)) async -> [StompFrame] {
        let deadline = ContinuousClock.now + timeout
        var received: [StompFrame] = []
        while let frame = await frames.next(timeout: deadline - ContinuousClock.now) {
            received.append(frame)
            if frame.command == .message, frame.headers["notice-id"] == markerId { break }
        }
        return received
    }

    /// ``frames(throughNotice:timeout:)`` as the `notice-id` of each MESSAGE (any other frame
    /// as its command, so that an unexpected one shows in the comparison).
    func noticeIds(throughNotice markerId: String, timeout: Duration = .seconds(30)) async -> [String] {
        await frames(throughNotice: markerId, timeout: timeout).map { $0.command == .message ? $0.headers["notice-id"] ?? "?" : "\($0.command)" }
    }

    /// Whether the connection has ended (waiting up to `timeout`).
    func waitUntilClosed(timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if frames.isFinished { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

/// A shareable atomic counter.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    var count: Int { value.load(ordering: .relaxed) }
}
