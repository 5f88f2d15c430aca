import RabbitMQ

/// A 128-bit digest (two FNV-1a-64 lanes, hex) of a queue message's body, `message-id` and
/// `timestamp` properties: how a redelivered record without an `id` is recognised.
///
/// Two messages that are identical in all three are the same notice to this service. Not
/// a cryptographic hash: publishers are trusted services, and the key is consulted only
/// for messages the broker marks redelivered.
enum SourceKey {
    static func of(_ message: AMQPMessage) -> String {
        var low = FNV(basis: 0xCBF2_9CE4_8422_2325)
        var high = FNV(basis: 0x6C62_272E_07BB_0142)
        for byte in message.body {
            low.add(byte)
            high.add(byte ^ 0x5A)
        }
        for part in [message.properties.messageId ?? "", message.properties.timestamp.map(String.init) ?? ""] {
            low.add(0)
            high.add(0)
            for byte in part.utf8 {
                low.add(byte)
                high.add(byte ^ 0x5A)
            }
        }
        return hex(high.value) + hex(low.value) + ":" + String(message.body.count)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private struct FNV {
        var value: UInt64
        init(basis: UInt64) { value = basis }
        mutating func add(_ byte: UInt8) {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
    }
}
