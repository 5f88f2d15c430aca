import Foundation
import NoticeServer
import Testing

/// The legacy browser code in a real browser: headless Chromium runs sockjs-client 1.6.1
/// (Debian `node-sockjs-client`) and jmesnil's stomp.js (shipped in `rabbitmq-server`'s
/// web-stomp examples), connects with a Bearer header, subscribes to `/notice/<uid>/remind`,
/// sends the `send('test')` probe, and receives a notice published to RabbitMQ — once over
/// WebSocket and once with WebSocket disabled, so that xhr-streaming carries it.
@Suite(.serialized) struct BrowserTests {
    static let sockJSClient = "/usr/share/nodejs/sockjs-client/dist/sockjs.min.js"

    /// stomp.js from the installed RabbitMQ's web-stomp examples plugin (its path has the version).
    static var stompJS: String? {
        let root = "/usr/lib/rabbitmq/lib"
        let fm = FileManager.default
        for server in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where server.hasPrefix("rabbitmq_server-") {
            let plugins = "\(root)/\(server)/plugins"
            for plugin in (try? fm.contentsOfDirectory(atPath: plugins)) ?? [] where plugin.hasPrefix("rabbitmq_web_stomp_examples-") {
                let path = "\(plugins)/\(plugin)/priv/stomp.js"
                if fm.fileExists(atPath: path) { return path }
            }
        }
        return nil
    }

    @Test(arguments: [("websocket", "['websocket']"), ("xhr-streaming", "['xhr-streaming']")])
    func legacyPageReceivesANotice(expected: String, transports: String) async throws {
        try #require(
            HeadlessChromium.isInstalled,
            "Chromium is missing at \(HeadlessChromium.executable): scripts/bootstrap installs Debian's chromium"
        )
        try #require(
            FileManager.default.fileExists(atPath: Self.sockJSClient),
            "sockjs-client is missing: scripts/bootstrap installs node-sockjs-client"
        )
        let stompJS = try #require(Self.stompJS, "stomp.js is missing: it comes with rabbitmq-server's web-stomp examples")

        let page = try await PageServer.start(files: ["/sockjs.min.js": Self.sockJSClient, "/stomp.js": stompJS])
        // The page comes from another origin, which the service is told to allow (CORS then applies).
        var configuration = TestServer.configuration()
        configuration.allowedOrigins = .list(["http://127.0.0.1:\(page.port)"])
        let server = try await TestServer.start(configuration)
        let html = Self.page(sockJSURL: "http://127.0.0.1:\(server.port)/ws", transports: transports)
        page.html.value = html

        let chromium = try HeadlessChromium(url: "http://127.0.0.1:\(page.port)/index.html")
        defer { chromium.stop() }
        var seen: [String] = []
        func waitFor(_ prefix: String) async -> String? {
            while let report = await page.reports.next(timeout: .seconds(45)) {
                seen.append(report)
                if report.hasPrefix(prefix) { return report }
                if report.hasPrefix("error") || report.hasPrefix("closed") { return nil }
            }
            return nil
        }
        let subscribed = await waitFor("subscribed")
        #expect(subscribed != nil, "the page did not subscribe; reports: \(seen); chromium: \(chromium.logTail)")
        if subscribed != nil {
            let broker = await TestBroker()
            try await broker.publish(#"{"userId":1,"title":"browser \#(expected)","content":"hello"}"#, to: server.configuration.queue)
            let notice = await waitFor("notice:")
            #expect(notice == "notice:browser \(expected)", "reports: \(seen); chromium: \(chromium.logTail)")
            // Each report is a fetch of its own: they may reach the page server in any order.
            if notice != nil, !seen.contains(where: { $0.hasPrefix("transport:") }) { _ = await waitFor("transport:") }
            #expect(seen.contains("transport:\(expected)"), "reports: \(seen)")
            await broker.close()
        }
        try await server.stop()
        try await page.stop()
    }

    /// The legacy flow, as the office system's page does it, reporting each step to the test.
    static func page(sockJSURL: String, transports: String) -> String {
        """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>legacy notice page</title></head><body>
        <script src="/sockjs.min.js"></script>
        <script src="/stomp.js"></script>
        <script>
          function report(m) { fetch('/report?m=' + encodeURIComponent(m)); }
          window.onerror = function (message) { report('error:' + message); };
          try {
            const socket = new SockJS('\(sockJSURL)', null, { transports: \(transports) });
            const stompClient = Stomp.over(socket);
            stompClient.debug = null;
            stompClient.onreceipt = function (frame) { report('subscribed'); };
            stompClient.connect({ Authorization: 'Bearer alice' }, function () {
              report('transport:' + socket.transport);
              stompClient.subscribe('/notice/' + '1' + '/remind', function (msg) {
                const n = JSON.parse(msg.body);
                report('notice:' + n.title);
              }, { receipt: 'subscribed' });
              stompClient.send('test');
            }, function (error) { report('error:stomp ' + error); });
            socket.addEventListener('close', function (e) { report('closed:' + e.code + ' ' + e.reason); });
          } catch (e) { report('error:' + e); }
        </script>
        </body></html>
        """
    }
}

/// The demo page's inbox in real browsers (docs/inbox.md): a badge from the events
/// destination's counts, and "mark all read" in one tab clearing it in the other.
@Suite(.serialized) struct DemoInboxBrowserTests {
    @Test func markAllReadInOneTabClearsTheBadgeInTheOther() async throws {
        try #require(
            HeadlessChromium.isInstalled,
            "Chromium is missing at \(HeadlessChromium.executable): scripts/bootstrap installs Debian's chromium"
        )
        var configuration = TestServer.configuration()
        configuration.demo = true
        let server = try await TestServer.start(configuration)
        let page = try await PageServer.start(files: [:])
        let broker = await TestBroker()
        let records = (1...3).map { #"{"id":\#($0),"userId":"1","title":"Meeting \#($0)","content":"Room \#($0)"}"# }
        try await broker.publishAll(records, to: server.configuration.queue, window: 10)
        try await server.waitForStored(3)
        let base = "http://127.0.0.1:\(server.port)/?token=alice"

        // Two tabs of alice's, each reporting every badge value it shows.
        let report = "&report=http://127.0.0.1:\(page.port)/report"
        let tabA = try HeadlessChromium(url: base + report + "&tab=A")
        defer { tabA.stop() }
        var seen: [String] = []
        func waitFor(_ wanted: String) async -> Bool {
            if seen.contains(wanted) { return true }
            while let next = await page.reports.next(timeout: .seconds(45)) {
                seen.append(next)
                if next == wanted { return true }
            }
            return false
        }
        #expect(await waitFor("A:badge:3"), "reports: \(seen); chromium: \(tabA.logTail)")
        // Tab B loads the same inbox and presses "Mark all read": tab A's badge clears.
        let tabB = try HeadlessChromium(url: base + report + "&tab=B&then=read-all")
        defer { tabB.stop() }
        #expect(await waitFor("B:badge:0"), "reports: \(seen); chromium: \(tabB.logTail)")
        #expect(await waitFor("A:badge:0"), "tab A never cleared its badge; reports: \(seen); chromium: \(tabA.logTail)")
        // A new notice raises it again in both.
        try await broker.publish(#"{"id":4,"userId":"1","title":"Lunch at noon","content":"Canteen"}"#, to: server.configuration.queue)
        #expect(await waitFor("A:badge:1"), "reports: \(seen)")
        #expect(await waitFor("B:badge:1"), "reports: \(seen)")
        // An announcement (a broadcast) is in alice's inbox too: both badges count it.
        try await broker.publish(#"{"id":5,"broadcast":true,"title":"Office closed Friday","content":"All day"}"#, to: server.configuration.queue)
        #expect(await waitFor("A:badge:2"), "reports: \(seen)")
        #expect(await waitFor("B:badge:2"), "reports: \(seen)")
        // A tab opened now shows the same once it has loaded (driven over the DevTools protocol:
        // it waits for that state, then takes the screenshot of what a person sees).
        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("notice-demo-inbox-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: screenshot) }
        let (status, shown) = try await Self.cdpPage(
            url: base,
            until: "document.getElementById('badge').textContent === '2' && document.querySelectorAll('#inbox li').length === 5",
            print: "[document.getElementById('badge').textContent, document.querySelectorAll('#inbox li.unread').length, "
                + "document.querySelectorAll('#inbox li.read').length, document.querySelector('#inbox li.unread strong').textContent]",
            screenshot: screenshot.path
        )
        #expect(status == 0, "the fresh tab never showed the inbox: \(shown)")
        #expect(shown == #"["2", 2, 3, "Office closed Friday"]"#)
        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "a PNG")
        // IHDR: width and height, big-endian, at bytes 16–23.
        let width = png.count > 24 ? png[16..<20].reduce(0) { $0 << 8 | Int($1) } : 0
        let height = png.count > 24 ? png[20..<24].reduce(0) { $0 << 8 | Int($1) } : 0
        #expect(width == 900 && height == 700)
        // Not blank: a page with a badge, a list and buttons compresses to well over 10 KB.
        #expect(png.count > 10_000)

        // The tabs first: their keep-alive connections would hold up the page server's graceful stop.
        tabA.stop()
        tabB.stop()
        await broker.close()
        try await page.stop()
        try await server.stop()
    }

    /// Runs `Tests/browser/cdp_page.py` (headless Chromium over the DevTools protocol, at most
    /// 45 s): its exit status (0: `until` held) and what it printed (`print`'s value as JSON).
    static func cdpPage(url: String, until: String, print expression: String, screenshot: String) async throws -> (Int32, String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("browser/cdp_page.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, url, "--until", until, "--print", expression, "--screenshot", screenshot]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = ContinuousClock.now + .seconds(90)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
