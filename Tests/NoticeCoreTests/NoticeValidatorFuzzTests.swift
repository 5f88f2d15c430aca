import Testing

@testable import NoticeCore

/// Bounded random testing of JSON parsing and record validation: mutated records never
/// crash or hang, and every accepted record yields payloads that are valid JSON.
@Suite struct NoticeValidatorFuzzTests {
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seeds = [
        #"{"id":123,"userId":7,"title":"t","content":"<b>c</b>","sendTarget":"SYS","extra":{"k":[1,2.5e3,null,true]}}"#,
        #"{"userIds":[1,"2","x"],"title":"\u00e9\ud83d\ude00","content":"a\nb"}"#,
        #"{"broadcast":true,"title":"all","sendTarget":3}"#,
    ].map { Array($0.utf8) }

    @Test func mutatedRecordsNeverCrash() throws {
        var random = SplitMix64(state: 0x5EED_0003)
        let validator = NoticeValidator()
        let interesting: [[UInt8]] =
            ["{", "}", "[", "]", "\"", ",", ":", "\\", "\\u", "null", "-0", "1e999", "userId", "broadcast", "/"].map { Array($0.utf8) }
            + [[0xFF], [0x00], [0xED, 0xA0, 0x80]]
        var accepted = 0
        for _ in 0..<20_000 {
            var bytes = Self.seeds.randomElement(using: &random)!
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes.insert(contentsOf: interesting.randomElement(using: &random)!, at: at)
                case 1: if at < bytes.count { bytes.remove(at: at) }
                default: if at < bytes.count { bytes[at] = UInt8.random(in: 0...255, using: &random) }
                }
            }
            guard let record = try? validator.validate(bytes, assignId: { 1 }) else { continue }
            accepted += 1
            let recipients: [String?] =
                switch record.audience {
                case .broadcast: [nil]
                case .users(let users): users
                }
            for recipient in recipients {
                let payload = record.payload(for: recipient, createdAt: "2026-01-01T00:00:00.000Z")
                guard case .object(let object) = try JSONParser.parse(Array(payload.utf8)) else {
                    Issue.record("payload is not an object: \(payload)")
                    continue
                }
                #expect(object["id"] == .string(String(record.id)))
                if let recipient { #expect(object["userId"] == .string(recipient)) }
            }
        }
        #expect(accepted > 100)
    }

    @Test func deepAndHugeInputsEndQuickly() {
        let validator = NoticeValidator()
        let inputs: [[UInt8]] = [
            Array(String(repeating: "[", count: 1_000_000).utf8),
            Array(("{\"userId\":1,\"x\":\"" + String(repeating: "\\u00e9", count: 100_000) + "\"}").utf8),
            Array(("{\"userIds\":[" + (0..<20_000).map(String.init).joined(separator: ",") + "]}").utf8),
        ]
        for input in inputs {
            _ = try? validator.validate(input) { 1 }
        }
    }
}
