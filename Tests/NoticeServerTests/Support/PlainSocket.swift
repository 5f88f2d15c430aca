import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking socket calls on a thread of their own: blocked, a thread of the two-thread
/// cooperative pool would stall the in-process server the test talks to.
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// A plain TCP connection to the server, for clients that misbehave below HTTP. Used from one
/// thread at a time.
final class PlainSocket: @unchecked Sendable {
    private let fd: Int32
    private(set) var closedByServer = false

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TestFailure("connect failed: \(errno)") }
    }

    deinit { close() }

    private var closed = false

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    func write(_ text: String) throws {
        let bytes = Array(text.utf8)
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw TestFailure("send failed: \(errno)") }
    }

    /// What the server sent until it closed the connection, or until `timeout`.
    func readUntilClosed(timeout: Duration) -> String {
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 {
                received += buffer[..<count]
            } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                closedByServer = true
                break
            }
        }
        return String(decoding: received, as: UTF8.self)
    }
}

/// Used from one thread at a time (``blocking(_:)`` hands it over).
extension RawWebSocket: @unchecked Sendable {}
