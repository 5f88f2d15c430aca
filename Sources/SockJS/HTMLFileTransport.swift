import Hummingbird

/// `GET /<server>/<session>/htmlfile?c=<callback>`: a page (padded past 1 KiB) whose script
/// blocks call `parent.<callback>` with each frame.
extension HTTPFraming {
    static func htmlFile(callback: String) -> HTTPFraming {
        var page = """
            <!doctype html>
            <html><head>
              <meta http-equiv="X-UA-Compatible" content="IE=edge" />
              <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
            </head><body><h2>Don't panic!</h2>
              <script>
                document.domain = document.domain;
                var c = parent.\(callback);
                c.start();
                function p(d) {c.message(d);};
                window.onload = function() {c.stop();};
              </script>
            """
        page += String(repeating: " ", count: max(0, 1024 - page.utf8.count + 14)) + "\r\n\r\n"
        return HTTPFraming(
            transport: .htmlFile,
            contentType: SockJSHTTP.html,
            prelude: page,
            streaming: true,
            // Frame text is the client's and the publishers' (ERROR echoes a receipt header,
            // notices may hold HTML): escaped for a script element, it can never close one.
            wrap: { "<script>\np(" + SockJSJSON.quote($0.text, inScript: true) + ");\n</script>\r\n" }
        )
    }

    /// A callback name the page may call: letters, digits, `-`, `_` and `.` only.
    static func isValidCallback(_ name: Substring) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x5F || byte == 0x2E
            }
    }
}

extension SockJSServer {
    func addHTMLFileRoutes(to group: RouterGroup<Context>) {
        group.get(":server/:session/htmlfile") { request, context in
            guard let callback = request.uri.queryParameters["c"], !callback.isEmpty else {
                return SockJSHTTP.text(.internalServerError, "\"callback\" parameter required")
            }
            guard HTTPFraming.isValidCallback(callback) else {
                return SockJSHTTP.text(.internalServerError, "invalid \"callback\" parameter")
            }
            return self.receive(request, context: context, framing: .htmlFile(callback: String(callback)))
        }
    }
}
