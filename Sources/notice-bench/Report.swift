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

/// CPU use over one phase, in percent of one core: the bench itself, the measured process, and
/// the broker when it is another process; and how busy the whole machine was. Given the
/// notices the phase moved, also each process's CPU per notice: on two shared cores, what a
/// figure like throughput can reach is two cores divided by their sum.
struct CPUWindow {
    let started = ContinuousClock.now
    let bench = ProcessSample.current
    let machine = MachineSample()
    let pid: Int32?
    let server: ProcessSample?
    let brokerPid: Int32?
    let broker: ProcessSample?

    init(pid: Int32?, brokerPid: Int32? = nil) {
        self.pid = pid
        self.server = pid.map { ProcessSample(pid: $0) }
        // The bare consumer and Web-STOMP measure the broker as --pid already.
        let brokerPid = brokerPid == pid ? nil : brokerPid
        self.brokerPid = brokerPid
        self.broker = brokerPid.map { ProcessSample(pid: $0) }
    }

    func report(notices: Int? = nil) { spent().report(notices: notices) }

    /// What the processes and the machine spent since the window opened.
    func spent() -> CPUSpent {
        let now = MachineSample()
        return CPUSpent(
            wall: (ContinuousClock.now - started).seconds,
            bench: ProcessSample.current.cpuSeconds - bench.cpuSeconds,
            server: pid.flatMap { pid in server.map { ProcessSample(pid: pid).cpuSeconds - $0.cpuSeconds } },
            broker: brokerPid.flatMap { pid in broker.map { ProcessSample(pid: pid).cpuSeconds - $0.cpuSeconds } },
            machineBusy: now.busy - machine.busy,
            machineTotal: now.total - machine.total
        )
    }
}

/// CPU seconds spent over one or more windows (added up across them).
struct CPUSpent {
    var wall: Double
    var bench: Double
    var server: Double?
    var broker: Double?
    var machineBusy: Double
    var machineTotal: Double

    static func + (a: CPUSpent, b: CPUSpent) -> CPUSpent {
        CPUSpent(
            wall: a.wall + b.wall,
            bench: a.bench + b.bench,
            server: a.server.map { $0 + (b.server ?? 0) },
            broker: a.broker.map { $0 + (b.broker ?? 0) },
            machineBusy: a.machineBusy + b.machineBusy,
            machineTotal: a.machineTotal + b.machineTotal
        )
    }

    func report(notices: Int? = nil) {
        guard wall > 0 else { return }
        func line(_ name: String, _ seconds: Double) {
            Report.line("\(name)_cpu_pct", seconds / wall * 100, digits: 1)
            if let notices, notices > 0 { Report.line("\(name)_cpu_us_per_notice", seconds / Double(notices) * 1e6, digits: 1) }
        }
        line("bench", bench)
        if let server { line("server", server) }
        if let broker { line("broker", broker) }
        if machineTotal > 0 { Report.line("machine_busy_pct", machineBusy / machineTotal * 100, digits: 1) }
    }
}

/// All CPUs' time from the first line of /proc/stat, in ticks: busy is everything but idle and iowait.
struct MachineSample {
    let busy: Double
    let total: Double

    init() {
        let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
        let fields = (stat.split(separator: "\n").first ?? "").split(separator: " ").dropFirst().compactMap { Double($0) }
        // user nice system idle iowait irq softirq steal (guest time is already in user)
        let counted = fields.prefix(8)
        total = counted.reduce(0, +)
        busy = total - (counted.count > 4 ? counted[counted.startIndex + 3] + counted[counted.startIndex + 4] : 0)
    }
}
