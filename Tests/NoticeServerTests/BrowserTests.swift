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
