import Synchronization

/// Time-ordered 64-bit ids for records published without one: milliseconds since
/// 2020-01-01 (41 bits), a node number (10 bits) and a per-millisecond sequence (12 bits).
/// Always positive; strictly increasing within a process, even if the clock steps back.
public final class NoticeIDGenerator: Sendable {
    static let epochMillis: Int64 = 1_577_836_800_000
    private let node: Int64
    private let clock: @Sendable () -> Int64
    private let last = Mutex<Int64>(0)

    /// - Parameters:
    ///   - nodeId: any text naming this node; hashed to 10 bits.
    ///   - nowMillis: Unix time in milliseconds (a parameter for tests).
    public init(nodeId: String, nowMillis: @escaping @Sendable () -> Int64) {
        var hash: UInt32 = 2_166_136_261
        for byte in nodeId.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        self.node = Int64(hash & 0x3FF)
        self.clock = nowMillis
    }

    /// The next id.
    public func next() -> Int64 {
        let candidate = ((clock() - Self.epochMillis) << 22) | (node << 12)
        return last.withLock { last in
            // Same millisecond (or the clock went back): continue the sequence after the last id.
            let id = candidate > last ? candidate : last + 1
            last = id
            return id
        }
    }
}
