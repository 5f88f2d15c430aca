/// An incremental STOMP decoder: feed it bytes as they arrive, in any split, and take
/// heart-beats and frames out.
///
/// It enforces STOMP 1.2 framing for every version: a command line, header lines, a
/// blank line, a body ended by NUL; `content-length` (when present) wins over the first
/// NUL, so bodies may contain NULs; lines may end in LF or CRLF; EOLs between frames are
/// heart-beats. Header values are unescaped per ``version`` (no escapes in 1.0, `\n \c \\`
/// in 1.1, plus `\r` in 1.2; any other escape is an error), except in CONNECT, STOMP and
/// CONNECTED frames. Repeated headers are kept, and lookups see the first.
///
/// Partial input is never an error: `next()` returns `nil` until a whole frame is buffered,
/// remembering how far it has scanned, so byte-at-a-time input costs linear time. A frame
/// that grows past ``Limits/maxFrameBytes`` or has more than ``Limits/maxHeaders`` headers
/// throws as soon as that is known, without waiting for the rest of it.
public struct StompDecoder: Sendable {
    /// Size limits, checked while a frame is still arriving.
    public struct Limits: Sendable, Hashable {
        /// Largest frame, from its command's first byte to its NUL.
        public var maxFrameBytes: Int
        /// Most header lines in one frame.
        public var maxHeaders: Int

        public init(maxFrameBytes: Int = 65_536, maxHeaders: Int = 64) {
            self.maxFrameBytes = maxFrameBytes
            self.maxHeaders = maxHeaders
        }
    }

    /// What the decoder found next in the stream.
    public enum Output: Sendable, Hashable {
        /// An EOL outside a frame.
        case heartBeat
        case frame(StompFrame)
    }

    private enum State: Sendable {
        case idle
        // Offsets are relative to `frameStart`, so the buffer can be compacted mid-frame.
        case headers(StompCommand, StompHeaders, lineStart: Int)
        case body(StompCommand, StompHeaders, bodyStart: Int, contentLength: Int?)
    }

    /// The version whose escaping applies to headers; `nil` (before CONNECTED) means none.
    public var version: StompVersion?
    public let limits: Limits

    private var buffer: [UInt8] = []
    private var frameStart = 0
    private var scanFrom = 0
    private var state: State = .idle

    public init(version: StompVersion? = nil, limits: Limits = .init()) {
        self.version = version
        self.limits = limits
    }

    /// Bytes buffered and not yet returned as output.
    public var bufferedBytes: Int { buffer.count - frameStart }

    /// Appends bytes received from the peer.
    public mutating func append<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The next heart-beat or complete frame, or `nil` when more bytes are needed.
    public mutating func next() throws(StompError) -> Output? {
        while true {
            switch state {
            case .idle:
                guard frameStart < buffer.count else { return nil }
                switch buffer[frameStart] {
                case .lf:
                    frameStart += 1
                    scanFrom = frameStart
                    return .heartBeat
                case .cr:
                    guard frameStart + 1 < buffer.count else { return nil }
                    guard buffer[frameStart + 1] == .lf else { throw .malformedLineEnding }
                    frameStart += 2
                    scanFrom = frameStart
                    return .heartBeat
                default:
                    guard let lf = try findLine() else { return nil }
                    let line = lineBytes(from: frameStart, to: lf)
                    guard let command = StompCommand(bytes: line) else {
                        throw String(validating: line, as: UTF8.self) == nil ? .invalidUTF8 : .unknownCommand
                    }
                    state = .headers(command, StompHeaders(), lineStart: lf + 1 - frameStart)
                }

            case .headers(let command, var headers, let lineStart):
                guard let lf = try findLine() else { return nil }
                let line = lineBytes(from: frameStart + lineStart, to: lf)
                if line.isEmpty {
                    let contentLength = try parseContentLength(headers["content-length"])
                    state = .body(command, headers, bodyStart: lf + 1 - frameStart, contentLength: contentLength)
                    continue
                }
                guard headers.count < limits.maxHeaders else { throw .tooManyHeaders(limit: limits.maxHeaders) }
                let field = try parseHeader(line, unescape: command.escapesHeaders ? version : nil)
                headers.add(field.name, field.value)
                state = .headers(command, headers, lineStart: lf + 1 - frameStart)

            case .body(let command, let headers, let bodyStart, let contentLength):
                let bodyIndex = frameStart + bodyStart
                let nul: Int
                if let contentLength {
                    nul = bodyIndex + contentLength
                    guard nul + 1 - frameStart <= limits.maxFrameBytes else {
                        throw .frameTooLarge(limit: limits.maxFrameBytes)
                    }
                    guard nul < buffer.count else { return nil }
                    guard buffer[nul] == 0 else { throw .missingNulTerminator }
                } else {
                    guard let found = try find(0) else { return nil }
                    nul = found
                }
                let frame = StompFrame(command, headers: headers, body: Array(buffer[bodyIndex..<nul]))
                frameStart = nul + 1
                scanFrom = frameStart
                state = .idle
                return .frame(frame)
            }
        }
    }

    /// Index of the next LF at or after the scan position, or `nil` (after a size check).
    private mutating func findLine() throws(StompError) -> Int? {
        guard let lf = try find(.lf) else { return nil }
        scanFrom = lf + 1
        return lf
    }

    private mutating func find(_ byte: UInt8) throws(StompError) -> Int? {
        if let index = buffer[scanFrom...].firstIndex(of: byte) {
            guard index + 1 - frameStart <= limits.maxFrameBytes else {
                throw .frameTooLarge(limit: limits.maxFrameBytes)
            }
            return index
        }
        scanFrom = buffer.count
        guard buffer.count - frameStart <= limits.maxFrameBytes else {
            throw .frameTooLarge(limit: limits.maxFrameBytes)
        }
        return nil
    }

    private func lineBytes(from start: Int, to lf: Int) -> ArraySlice<UInt8> {
        var end = lf
        if end > start, buffer[end - 1] == .cr { end -= 1 }
        return buffer[start..<end]
    }

    private func parseContentLength(_ value: String?) throws(StompError) -> Int? {
        guard let value else { return nil }
        guard !value.isEmpty, value.utf8.count <= 10, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let length = Int(value)
        else { throw .invalidContentLength }
        guard length < limits.maxFrameBytes else { throw .frameTooLarge(limit: limits.maxFrameBytes) }
        return length
    }

    private func parseHeader(_ line: ArraySlice<UInt8>, unescape version: StompVersion?) throws(StompError) -> StompHeaders.Field {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else { throw .malformedHeader }
        let name = try Self.decode(line[line.startIndex..<colon], version: version)
        let value = try Self.decode(line[(colon + 1)...], version: version)
        return .init(name: name, value: value)
    }

    private static func decode(_ bytes: ArraySlice<UInt8>, version: StompVersion?) throws(StompError) -> String {
        guard let version, version != .v1_0, bytes.contains(.backslash) else {
            guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
            return text
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            guard byte == .backslash else {
                out.append(byte)
                continue
            }
            switch iterator.next() {
            case UInt8(ascii: "n"): out.append(.lf)
            case UInt8(ascii: "c"): out.append(UInt8(ascii: ":"))
            case .backslash: out.append(.backslash)
            case UInt8(ascii: "r") where version >= .v1_2: out.append(.cr)
            default: throw .invalidEscape
            }
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw .invalidUTF8 }
        return text
    }

    private mutating func compact() {
        // Drop consumed bytes once they dominate the buffer; offsets in `state` are frame-relative.
        guard frameStart > 0, frameStart >= 4096 || frameStart == buffer.count else { return }
        if frameStart == buffer.count {
            // Everything decoded: free the storage (an idle connection keeps no buffer).
            buffer = []
        } else {
            buffer.removeFirst(frameStart)
        }
        scanFrom -= frameStart
        frameStart = 0
    }
}

extension UInt8 {
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let backslash = UInt8(ascii: "\\")
}
