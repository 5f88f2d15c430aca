import Testing

@testable import STOMP

/// A seeded, reproducible PRNG (SplitMix64) for the fuzz suites.
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

/// Bounded random testing of the decoder (libFuzzer is not used: a seeded generator in the
/// suite runs everywhere `swift test` runs). Inputs mix real frame pieces with random bytes.
@Suite struct StompDecoderFuzzTests {
    static let pieces: [[UInt8]] =
        [
            "CONNECT\n", "SEND\n", "SUBSCRIBE\n", "MESSAGE\n", "DISCONNECT\n", "destination:/a\n", "content-length:3\n",
            "content-length:99999999\n", "content-length:-1\n", "id:0\n", "a\\cb:c\\\\d\n", "x:\\t\n", "\n", "\r\n", "\r", "\0",
            "abc", ":", "\\", "\u{00e9}", "ACK\nid:1\n\n\0",
        ].map { Array($0.utf8) } + [[0xFF], [0xC3], [0x00, 0x00], [0xE2, 0x82]]

    static func input(_ random: inout SplitMix64) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<Int.random(in: 1...40, using: &random) {
            if Bool.random(using: &random) {
                bytes += pieces.randomElement(using: &random)!
            } else {
                bytes += (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
        }
        return bytes
    }

    /// Decodes everything; the outputs up to the first error, and whether one came.
    static func decode(_ chunks: [ArraySlice<UInt8>], version: StompVersion?) -> ([StompDecoder.Output], StompError?) {
        var decoder = StompDecoder(version: version, limits: .init(maxFrameBytes: 512, maxHeaders: 8))
        var outputs: [StompDecoder.Output] = []
        for chunk in chunks {
            decoder.append(chunk)
            do {
                while let output = try decoder.next() { outputs.append(output) }
            } catch {
                return (outputs, error)
            }
        }
        return (outputs, nil)
    }

    @Test func randomInputNeverCrashesAndSplitsDoNotMatter() {
        var random = SplitMix64(state: 0x5EED_0001)
        for _ in 0..<5_000 {
            let bytes = Self.input(&random)
            let version = [StompVersion.v1_0, .v1_1, .v1_2, nil].randomElement(using: &random)!
            let whole = Self.decode([bytes[...]], version: version)
            var chunks: [ArraySlice<UInt8>] = []
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...7, using: &random))
                chunks.append(bytes[start..<end])
                start = end
            }
            let split = Self.decode(chunks, version: version)
            #expect(whole.0 == split.0, "input \(bytes)")
            #expect(whole.1 == split.1, "input \(bytes)")
        }
    }

    @Test func encodedFramesAlwaysDecodeBack() throws {
        var random = SplitMix64(state: 0x5EED_0002)
        let alphabet = Array("ab:\\\n\r é/-_0".unicodeScalars)
        func text() -> String {
            String(String.UnicodeScalarView((0..<Int.random(in: 1...12, using: &random)).map { _ in alphabet.randomElement(using: &random)! }))
        }
        for _ in 0..<3_000 {
            var headers = StompHeaders()
            for _ in 0..<Int.random(in: 0...5, using: &random) { headers.add(text(), text()) }
            let body = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let frame = StompFrame(.message, headers: headers, body: body).withContentLength()
            var decoder = StompDecoder(version: .v1_2)
            decoder.append(StompEncoder.encode(frame, version: .v1_2))
            #expect(try decoder.next() == .frame(frame))
        }
    }
}
