/// Encodes frames for the wire.
public enum StompEncoder {
    /// The bytes of `frame`, headers escaped as `version` requires (none for 1.0 and for
    /// CONNECT, STOMP and CONNECTED frames), terminated by NUL.
    ///
    /// `content-length` is written only if the frame's headers carry it; see
    /// ``StompFrame/withContentLength()``.
    public static func encode(_ frame: StompFrame, version: StompVersion) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(frame.body.count + 64 + frame.headers.count * 32)
        encode(frame, version: version, into: &out)
        return out
    }

    /// Appends the bytes of `frame` to `out`.
    public static func encode(_ frame: StompFrame, version: StompVersion, into out: inout [UInt8]) {
        out.append(contentsOf: frame.command.rawValue.utf8)
        out.append(.lf)
        let escape = frame.command.escapesHeaders && version != .v1_0
        for field in frame.headers {
            appendHeaderText(field.name, escape: escape, version: version, into: &out)
            out.append(UInt8(ascii: ":"))
            appendHeaderText(field.value, escape: escape, version: version, into: &out)
            out.append(.lf)
        }
        out.append(.lf)
        out.append(contentsOf: frame.body)
        out.append(0)
    }

    private static func appendHeaderText(_ text: String, escape: Bool, version: StompVersion, into out: inout [UInt8]) {
        // Most header text has nothing to escape: then it is one copy, not a byte at a time.
        guard escape, text.utf8.contains(where: { escapeLetter($0, version: version) != nil }) else {
            out.append(contentsOf: text.utf8)
            return
        }
        for byte in text.utf8 {
            if let letter = escapeLetter(byte, version: version) {
                out.append(.backslash)
                out.append(letter)
            } else {
                out.append(byte)
            }
        }
    }

    /// The letter after the backslash that stands for `byte` in header text, if it is escaped.
    private static func escapeLetter(_ byte: UInt8, version: StompVersion) -> UInt8? {
        switch byte {
        case .backslash: .backslash
        case .lf: UInt8(ascii: "n")
        case UInt8(ascii: ":"): UInt8(ascii: "c")
        case .cr where version >= .v1_2: UInt8(ascii: "r")
        default: nil
        }
    }
}

extension StompFrame {
    /// This frame with a `content-length` header for its body (replacing none already there).
    public func withContentLength() -> StompFrame {
        guard headers["content-length"] == nil else { return self }
        var copy = self
        copy.headers.add("content-length", String(body.count))
        return copy
    }
}
