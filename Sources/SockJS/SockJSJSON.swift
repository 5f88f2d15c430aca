import Foundation

/// JSON as SockJS needs it: strings quoted with the escapes sockjs-node applies (some
/// characters browsers or proxies mangle are always written as `\uXXXX`), and the client's
/// message arrays parsed.
public enum SockJSJSON {
    /// `text` as a JSON string literal. Besides what JSON requires, escapes U+200C–U+200F,
    /// U+2028–U+202F, U+2060–U+206F, U+FFF0–U+FFFF and every character outside the BMP (as
    /// its UTF-16 surrogate pair), as sockjs-protocol 0.3.3's `escapable_by_server` asks.
    /// `inScript`: also `<`, `>` and `&`, for a literal inside an HTML `<script>` element, which
    /// a `</script>` in the text would otherwise end (the `htmlfile` transport).
    public static func quote(_ text: String, inScript: Bool = false) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            let value = scalar.value
            switch value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x08: out += "\\b"
            case 0x09: out += "\\t"
            case 0x0A: out += "\\n"
            case 0x0C: out += "\\f"
            case 0x0D: out += "\\r"
            case 0x3C where inScript, 0x3E where inScript, 0x26 where inScript:
                appendEscape(UInt16(value), to: &out)
            case 0x00..<0x20, 0x200C...0x200F, 0x2028...0x202F, 0x2060...0x206F, 0xFFF0...0xFFFF:
                appendEscape(UInt16(value), to: &out)
            case 0x10000...:
                for unit in String(scalar).utf16 { appendEscape(unit, to: &out) }
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    private static func appendEscape(_ unit: UInt16, to out: inout String) {
        let hex = String(unit, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }

    /// What a client sent: a JSON array of strings (every transport), or a single JSON string
    /// (WebSocket only). `nil` when it is neither (SockJS's "Broken JSON encoding.").
    public static func messages(from data: some Sequence<UInt8>, allowSingleString: Bool) -> [String]? {
        let bytes = Data(data)
        let decoder = JSONDecoder()
        if let array = try? decoder.decode([String].self, from: bytes) { return array }
        if allowSingleString, let single = try? decoder.decode(String.self, from: bytes) { return [single] }
        return nil
    }
}
