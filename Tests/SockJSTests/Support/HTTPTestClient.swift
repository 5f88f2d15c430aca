import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// A finished HTTP exchange.
struct HTTPResult: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: String

    subscript(_ name: String) -> String? { headers.first(name: name) }
}

/// HTTP for the protocol tests: whole answers, or a streaming answer read piece by piece.
enum HTTPTestClient {
    static func send(
        _ method: HTTPMethod,
        _ url: String,
        body: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    static func post(_ url: String, body: String? = nil, headers: [(String, String)] = []) async throws -> HTTPResult {
        try await send(.POST, url, body: body, headers: headers)
    }

    static func get(_ url: String, headers: [(String, String)] = []) async throws -> HTTPResult {
        try await send(.GET, url, headers: headers)
    }

    /// Starts a request whose body is read as it arrives, split after each `delimiter`.
    static func stream(_ method: HTTPMethod, _ url: String, delimiter: String, headers: [(String, String)] = []) async throws -> HTTPStream {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        return HTTPStream(response: response, delimiter: delimiter)
    }
}

/// A streaming response: status, headers, and its body in pieces that each end with the
/// delimiter (the rest, if the body ends without one, comes last).
final class HTTPStream: Sendable {
    let status: Int
    let headers: HTTPHeaders
    private let pieces = PieceQueue()
    private let reader: Task<Void, Never>

    init(response: HTTPClientResponse, delimiter: String) {
        status = Int(response.status.code)
        headers = response.headers
        let pieces = self.pieces
        reader = Task {
            var pending = ""
            do {
                for try await chunk in response.body {
                    pending += String(buffer: chunk)
                    while let range = pending.range(of: delimiter) {
                        pieces.push(String(pending[..<range.upperBound]))
                        pending = String(pending[range.upperBound...])
                    }
                }
            } catch {}
            if !pending.isEmpty { pieces.push(pending) }
            pieces.finish()
        }
    }

    subscript(_ name: String) -> String? { headers.first(name: name) }

    /// The next piece, or nil when the body ended (or nothing came within `timeout`).
    func next(timeout: Duration = .seconds(30)) async -> String? {
        await pieces.next(timeout: timeout)
    }

    /// Whether the body ended (waiting up to `timeout` for it), with nothing more to read.
    func ended(timeout: Duration = .seconds(30)) async -> Bool {
        await pieces.next(timeout: timeout) == nil && pieces.isFinished
    }

    func cancel() { reader.cancel() }
}

/// A FIFO awaited with a timeout (polling keeps it simple and cancellation-safe).
final class PieceQueue: Sendable {
    private let state = Mutex<(items: [String], finished: Bool)>(([], false))

    func push(_ item: String) { state.withLock { $0.items.append(item) } }
    func finish() { state.withLock { $0.finished = true } }
    var isFinished: Bool { state.withLock { $0.finished && $0.items.isEmpty } }

    func next(timeout: Duration = .seconds(30)) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (item, finished): (String?, Bool) = state.withLock { state in
                if !state.items.isEmpty { return (state.items.removeFirst(), false) }
                return (nil, state.finished)
            }
            if let item { return item }
            if finished || ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
