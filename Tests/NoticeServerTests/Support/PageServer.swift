import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A tiny HTTP server of the test's own for a browser: one page, the client libraries read
/// from installed Debian packages, and `/report?m=...` where the page tells the test what
/// happened.
struct PageServer {
    let port: Int
    let reports: TestQueue<String>
    /// The HTML served at `/index.html`; set it before the browser loads the page.
    let html: PageHTML
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// `files`: URL path → file on disk.
    static func start(files: [String: String]) async throws -> PageServer {
        var logger = Logger(label: "test.page")
        logger.logLevel = .critical
        let reports = TestQueue<String>()
        let router = Router()
        let html = PageHTML()
        router.get("/index.html") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html.value)))
        }
        for (path, file) in files {
            let contents = try String(contentsOfFile: file, encoding: .utf8)
            router.get(RouterPath(path)) { _, _ in
                Response(status: .ok, headers: [.contentType: "application/javascript"], body: .init(byteBuffer: ByteBuffer(string: contents)))
            }
        }
        router.get("/report") { request, _ in
            reports.push(request.uri.queryParameters["m"].map { String($0).removingPercentEncoding ?? String($0) } ?? "")
            return Response(status: .noContent)
        }
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        let ports = TestQueue<Int>()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in ports.push(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(services: [app], logger: logger)
        let task = Task { try await group.run() }
        guard let port = await ports.next(timeout: .seconds(30)) else { throw TestFailure("page server did not start") }
        return PageServer(port: port, reports: reports, html: html, group: group, task: task)
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// The page's HTML, settable once the service's port is known.
final class PageHTML: Sendable {
    private let text = Mutex("")
    var value: String {
        get { text.withLock { $0 } }
        set { text.withLock { $0 = newValue } }
    }
}

/// Headless Chromium on one URL. Stopping it ends every process it started: they are found
/// by the profile directory made for this instance, which each of them names on its command line.
final class HeadlessChromium {
    static let executable = "/usr/bin/chromium"
    private let process = Process()
    private let profile: URL
    let log: URL

    /// Whether Chromium is installed (scripts/bootstrap installs Debian's `chromium`).
    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    init(url: String) throws {
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("notice-chromium-\(UUID().uuidString)")
        log = FileManager.default.temporaryDirectory.appendingPathComponent("notice-chromium-\(UUID().uuidString).log")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--user-data-dir=\(profile.path)", url,
        ]
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// The end of Chromium's output, for failure messages.
    var logTail: String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return String(text.suffix(2000))
    }

    /// Ends Chromium and every process it started, and removes its profile and log.
    func stop() {
        if process.isRunning { process.terminate() }
        for signal in [SIGTERM, SIGKILL] {
            let pids = ownProcesses()
            if pids.isEmpty { break }
            for pid in pids { kill(pid, signal) }
            let deadline = Date().addingTimeInterval(5)
            while !ownProcesses().isEmpty, Date() < deadline { usleep(50_000) }
        }
        try? FileManager.default.removeItem(at: profile)
        try? FileManager.default.removeItem(at: log)
    }

    /// The processes whose command line names this instance's profile directory.
    private func ownProcesses() -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            return String(decoding: data, as: UTF8.self).contains(profile.path) ? pid : nil
        }
    }
}
