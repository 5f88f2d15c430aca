import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket client on a plain socket whose blocking reads run on Dispatch threads (never
/// on the cooperative pool, where the server under test runs).
///
/// HummingbirdWSClient sometimes loses frames that arrive in the same read as the `101`
/// answer (seen here under load: the SockJS server's `o`, sent at once, never reached the
/// handler), and SockJS servers always speak first. This client reads the socket itself.
public final class BlockingWebSocket: @unchecked Sendable {
    // `fd` is set only in init; reads (and `buffer`) are serialized by `queue`, writes by
    // `writeQueue`, so a long read never holds a write back.
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let queue = DispatchQueue(label: "test.blocking-ws.read")
    private let writeQueue = DispatchQueue(label: "test.blocking-ws.write")

    /// Connects to `127.0.0.1:port`, asks to upgrade `path` (with `Origin` if given), and
    /// throws unless the answer is `101`.
    public static func open(port: Int, path: String, origin: String? = nil) async throws -> BlockingWebSocket {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try BlockingWebSocket(port: port, path: path, origin: origin) })
            }
        }
    }

    private init(port: Int, path: String, origin: String?) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BlockingWebSocketError("connect failed: \(errno)") }
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let origin { request += "Origin: \(origin)\r\n" }
        try write(Array((request + "\r\n").utf8))
        setTimeout(seconds: 30)
        while !buffer.endsWithBytes(Array("\r\n\r\n".utf8)) {
            var byte: UInt8 = 0
            guard recv(fd, &byte, 1, 0) == 1 else { throw BlockingWebSocketError("no handshake answer") }
            buffer.append(byte)
        }
        let answer = String(decoding: buffer, as: UTF8.self)
        buffer = []
        guard answer.hasPrefix("HTTP/1.1 101") else { throw BlockingWebSocketError("upgrade refused: \(answer.prefix(40))") }
    }

    deinit { Glibc.close(fd) }

    /// The next text message, or nil if the server closed the connection or `timeout` passed.
    public func next(timeout: Duration = .seconds(30)) async -> String? {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: self.readMessage(timeout: timeout)) }
        }
    }

    /// Whether the server ends the connection (a close frame or EOF) within `timeout`,
    /// skipping text messages.
    public func closed(timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await next(timeout: deadline - ContinuousClock.now) == nil { return ContinuousClock.now < deadline }
        }
        return false
    }

    /// Sends one masked text message.
    public func send(_ text: String) {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65_536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        let mask: [UInt8] = [1, 2, 3, 4]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        let bytes = frame
        writeQueue.async { try? self.write(bytes) }
    }

    /// Shuts the socket down both ways (the server sees the connection end).
    public func close() {
        writeQueue.async { shutdown(self.fd, Int32(SHUT_RDWR)) }
    }

    private func readMessage(timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let (opcode, payload) = parseFrame() {
                switch opcode {
                case 0x1: return String(decoding: payload, as: UTF8.self)
                case 0x8:
                    // Answer the close handshake, as a browser does.
                    try? write([0x88, 0x80, 0, 0, 0, 0])
                    return nil
                default: continue
                }
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            setTimeout(seconds: max(0.05, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18))
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { return nil }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return nil
            }
            buffer += chunk[0..<count]
        }
    }

    /// One whole unmasked frame from the buffer, if there is one.
    private func parseFrame() -> (UInt8, [UInt8])? {
        guard buffer.count >= 2 else { return nil }
        let opcode = buffer[0] & 0x0F
        var length = Int(buffer[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard buffer.count >= 4 else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return nil }
            length = buffer[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard buffer.count >= offset + length else { return nil }
        let payload = Array(buffer[offset..<(offset + length)])
        buffer.removeFirst(offset + length)
        return (opcode, payload)
    }

    private func setTimeout(seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw BlockingWebSocketError("send failed: \(errno)") }
            offset += sent
        }
    }
}

/// Why a ``BlockingWebSocket`` could not connect or send.
public struct BlockingWebSocketError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Array where Element: Equatable {
    fileprivate func endsWithBytes(_ suffix: [Element]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
