import Foundation
import Hummingbird
import NIOCore

/// `GET /iframe.html` (and `/iframe-<version>.html`): the page sockjs-client loads for its
/// iframe-based transports; cacheable for a year, with an ETag and 304 on `If-None-Match`.
extension SockJSServer {
    func addIframeRoutes(to group: RouterGroup<Context>) {
        let page = Self.iframePage(clientScriptURL: configuration.clientScriptURL)
        let etag = "\"" + String(Self.fnv1a(page), radix: 16) + "\""
        // Named like the session URLs' first segment: captures at one level share a trie node.
        group.get(":server") { request, context in
            guard let file = context.parameters.get("server"), Self.isIframeName(file) else { return Response(status: .notFound) }
            if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
            return Response(
                status: .ok,
                headers: [
                    .contentType: SockJSHTTP.html,
                    .cacheControl: "public, max-age=\(SockJSHTTP.oneYear)",
                    .expires: SockJSHTTP.httpDate(.init(timeIntervalSinceNow: Double(SockJSHTTP.oneYear))),
                    .eTag: etag,
                ],
                body: .init(byteBuffer: ByteBuffer(string: page))
            )
        }
    }

    /// `iframe.html` or `iframe-<letters, digits, . - _>.html`.
    static func isIframeName(_ name: String) -> Bool {
        guard name.hasPrefix("iframe"), name.hasSuffix(".html") else { return false }
        let middle = name.dropFirst("iframe".count).dropLast(".html".count)
        if middle.isEmpty { return true }
        guard middle.first == "-" else { return false }
        return middle.dropFirst().utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
    }

    static func iframePage(clientScriptURL: String) -> String {
        let url = clientScriptURL.replacingOccurrences(of: "\"", with: "%22")
        return """
            <!DOCTYPE html>
            <html>
            <head>
              <meta http-equiv="X-UA-Compatible" content="IE=edge" />
              <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
              <script>
                document.domain = document.domain;
                _sockjs_onload = function(){SockJS.bootstrap_iframe();};
              </script>
              <script src="\(url)"></script>
            </head>
            <body>
              <h2>Don't panic!</h2>
              <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
            </body>
            </html>
            """
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
