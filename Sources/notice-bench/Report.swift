import Foundation

/// `key=value` lines on stdout, one per figure, for scripts/bench to grep.
enum Report {
    static func line(_ key: String, _ value: some CustomStringConvertible) {
        print("\(key)=\(value)")
    }

    static func line(_ key: String, _ value: Double, digits: Int = 3) {
        print("\(key)=\(String(format: "%.\(digits)f", value))")
    }

    /// `<prefix>_p50_ms` … `<prefix>_max_ms` of nanosecond samples.
    static func percentiles(_ prefix: String, _ samples: [Int64]) {
        let sorted = samples.sorted()
        for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
            line("\(prefix)_\(name)_ms", percentile(sorted, p) / 1e6)
        }
    }

    /// The nearest-rank percentile of sorted samples (NaN when there are none).
    static func percentile(_ sorted: [Int64], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((Double(sorted.count) * p).rounded(.up)) - 1
        return Double(sorted[min(sorted.count - 1, max(0, rank))])
    }

    /// Writes samples (ns) as milliseconds, one per line, for the CDF plot.
    static func write(_ samples: [Int64], to path: String) throws {
        var text = ""
        text.reserveCapacity(samples.count * 8)
        for sample in samples { text += String(format: "%.3f\n", Double(sample) / 1e6) }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// `(receivedAt, latency)` pairs in ns as `received_ms,latency_ms` lines, sorted by arrival,
    /// arrival counted from the first.
    static func writeTimeline(_ samples: [(Int64, Int64)], to path: String) throws {
        let sorted = samples.sorted { $0.0 < $1.0 }
        let start = sorted.first?.0 ?? 0
        var text = "received_ms,latency_ms\n"
        text.reserveCapacity(samples.count * 16)
        for (receivedAt, latency) in sorted {
            text += String(format: "%.3f,%.3f\n", Double(receivedAt - start) / 1e6, Double(latency) / 1e6)
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// Resident memory and CPU time of a process, from /proc.
struct ProcessSample {
    let rssKiB: Int
    let cpuSeconds: Double

    init(pid: Int32) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let rssLine = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        rssKiB = Int(rssLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        // Fields after the command name's closing parenthesis: utime and stime are the 12th and 13th.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) {
            cpuSeconds = (user + system) / ticks
        } else {
            cpuSeconds = 0
        }
    }

    static var current: ProcessSample { ProcessSample(pid: getpid()) }
}

/// CPU use of the bench itself and of the measured process over one phase, in percent of one core.
struct CPUWindow {
    let started = ContinuousClock.now
    let bench = ProcessSample.current
    let pid: Int32?
    let server: ProcessSample?

    init(pid: Int32?) {
        self.pid = pid
        self.server = pid.map { ProcessSample(pid: $0) }
    }

    func report() {
        let wall = (ContinuousClock.now - started).seconds
        guard wall > 0 else { return }
        Report.line("bench_cpu_pct", (ProcessSample.current.cpuSeconds - bench.cpuSeconds) / wall * 100, digits: 1)
        if let pid, let server {
            Report.line("server_cpu_pct", (ProcessSample(pid: pid).cpuSeconds - server.cpuSeconds) / wall * 100, digits: 1)
        }
    }
}
