import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NoticeTesting
import STOMP
import Synchronization

/// A STOMP client over SockJS, as sockjs-client would be, on the `websocket`,
/// `xhr_streaming` or `xhr` (polling) transport: frames in a queue, frames out on demand.
final class SockJSStompClient: Sendable {
    enum Transport: String, Sendable, CaseIterable {
        case webSocket = "websocket"
        case xhrStreaming = "xhr_streaming"
        case xhrPolling = "xhr"
    }

    let frames = TestQueue<StompFrame>()
    /// SockJS frames seen, by their letter (`o`, `h`, `a`, `c`).
    let sockJSFrames = TestQueue<String>()
    private let outgoing: AsyncStream<String>.Continuation
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let decoder = Mutex(StompDecoder(version: .v1_2, limits: .init(maxFrameBytes: 1 << 20, maxHeaders: 1000)))

    /// Opens a session at `/ws/000/<random>/<transport><query>` and waits for its open frame.
    static func open(port: Int, transport: Transport, query: String = "") async throws -> SockJSStompClient {
        let base = "127.0.0.1:\(port)/ws/000/\(UUID().uuidString.prefix(8))"
        let client = SockJSStompClient(base: base, transport: transport, query: query)
        guard await client.sockJSFrames.next() == "o" else { throw TestFailure("no SockJS open frame") }
        return client
    }

    private init(base: String, transport: Transport, query: String) {
        let (stream, outgoing) = AsyncStream.makeStream(of: String.self)
        self.outgoing = outgoing
        switch transport {
        case .webSocket:
            // BlockingWebSocket, not HummingbirdWSClient: see its note on frames sent right after 101.
            let port = Int(base.split(separator: "/")[0].split(separator: ":")[1]) ?? 0
            let path = "/" + base.split(separator: "/").dropFirst().joined(separator: "/") + "/websocket" + query
            start {
                guard let socket = try? await BlockingWebSocket.open(port: port, path: path) else {
                    self.frames.finish()
                    return
                }
                let writer = Task {
                    for await message in stream { socket.send(Self.encode([message])) }
                }
                while !Task.isCancelled, let text = await socket.next(timeout: .seconds(3600)) {
                    self.handle(frame: text)
                }
                writer.cancel()
                socket.close()
                self.frames.finish()
            }
        case .xhrStreaming, .xhrPolling:
            start {
                var open = true
                while open, !Task.isCancelled {
                    do {
                        var request = HTTPClientRequest(url: "http://\(base)/\(transport.rawValue)\(query)")
                        request.method = .POST
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                        var pending = ""
                        for try await chunk in response.body {
                            pending += String(buffer: chunk)
                            while let newline = pending.firstIndex(of: "\n") {
                                let line = String(pending[..<newline])
                                pending = String(pending[pending.index(after: newline)...])
                                if !line.hasPrefix("hhhh") { open = self.handle(frame: line) && open }
                            }
                        }
                    } catch {
                        open = false
                    }
                }
                self.frames.finish()
            }
            start {
                for await message in stream {
                    var request = HTTPClientRequest(url: "http://\(base)/xhr_send\(query)")
                    request.method = .POST
                    request.body = .bytes(ByteBuffer(string: Self.encode([message])))
                    _ = try? await HTTPClient.shared.execute(request, timeout: .seconds(30))
                }
            }
        }
    }

    private func start(_ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        tasks.withLock { $0.append(task) }
    }

    /// Handles one SockJS frame; `false` after a close frame.
    @discardableResult
    private func handle(frame: String) -> Bool {
        guard let letter = frame.first else { return true }
        sockJSFrames.push(String(letter))
        switch letter {
        case "a":
            let messages = (try? JSONDecoder().decode([String].self, from: Data(frame.dropFirst().utf8))) ?? []
            for message in messages {
                decoder.withLock { decoder in
                    decoder.append(Array(message.utf8))
                    while let output = try? decoder.next() {
                        if case .frame(let stompFrame) = output { frames.push(stompFrame) }
                    }
                }
            }
            return true
        case "c":
            return false
        default:
            return true
        }
    }

    static func encode(_ messages: [String]) -> String {
        (try? String(decoding: JSONEncoder().encode(messages), as: UTF8.self)) ?? "[]"
    }

    func send(_ frame: StompFrame, version: StompVersion = .v1_2) {
        outgoing.yield(String(decoding: StompEncoder.encode(frame, version: version), as: UTF8.self))
    }

    func close() {
        outgoing.finish()
        tasks.withLock { $0.forEach { $0.cancel() } }
    }

    /// Sends CONNECT (with `Authorization: Bearer` when `token` is set) and returns the answer.
    func connect(token: String?) async -> StompFrame? {
        var headers: StompHeaders = ["accept-version": "1.1,1.0", "heart-beat": "10000,10000"]
        if let token { headers.add("Authorization", "Bearer \(token)") }
        send(StompFrame(.connect, headers: headers), version: .v1_1)
        return await frames.next()
    }

    /// Subscribes and waits for the receipt.
    func subscribe(_ destination: String) async -> StompFrame? {
        send(StompFrame(.subscribe, headers: ["id": "sub-0", "destination": destination, "receipt": "r-sub"]), version: .v1_1)
        return await frames.next()
    }
}
