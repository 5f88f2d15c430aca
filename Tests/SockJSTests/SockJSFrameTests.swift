import Foundation
import HummingbirdWebSocket
import Testing

@testable import SockJS

/// Frames and JSON, without sockets.
typealias BasicContext = BasicSockJSRequestContext

@Suite struct SockJSFrameTests {
    @Test func framesAreWrittenAsSockJSSpellsThem() {
        #expect(SockJSFrame.open.text == "o")
        #expect(SockJSFrame.heartbeat.text == "h")
        #expect(SockJSFrame.messages(["a", "b\"c"]).text == #"a["a","b\"c"]"#)
        #expect(SockJSFrame.goAway.text == #"c[3000,"Go away!"]"#)
        #expect(SockJSFrame.anotherConnection.text == #"c[2010,"Another connection still open"]"#)
    }

    @Test func controlCharactersAndTheRangesSockJSNamesAreEscaped() {
        #expect(SockJSJSON.quote("  \u{0}\n\r ") == #""  \u0000\n\r ""#)
        #expect(SockJSJSON.quote("\u{200C}\u{2028}\u{2060}\u{FFF0}\u{FFFF}") == #""\u200c\u2028\u2060\ufff0\uffff""#)
        // Outside the BMP: the UTF-16 surrogate pair, as JavaScript would hold it.
        #expect(SockJSJSON.quote("😀") == #""\ud83d\ude00""#)
        // Everything else goes verbatim.
        #expect(SockJSJSON.quote("é漢\u{7F}") == "\"é漢\u{7F}\"")
    }

    /// Inside a `<script>` element (htmlfile) no text can end the element or open another.
    @Test func textForAScriptElementCannotCloseIt() {
        let hostile = #"</script><script>alert("x")</script>&amp;"#
        let quoted = SockJSJSON.quote(hostile, inScript: true)
        #expect(!quoted.contains("<") && !quoted.contains(">") && !quoted.contains("&"))
        #expect(quoted == #""\u003c/script\u003e\u003cscript\u003ealert(\"x\")\u003c/script\u003e\u0026amp;""#)
        // The same text elsewhere (xhr, eventsource, websocket) is plain JSON, as sockjs-node writes it.
        #expect(SockJSJSON.quote("<b>&", inScript: false) == #""<b>&""#)
        // What the browser decodes is the text itself.
        let decoded = try? JSONDecoder().decode(String.self, from: Data(quoted.utf8))
        #expect(decoded == hostile)
    }

    @Test func clientMessagesAreArraysOfStringsOrOneStringOnWebSocket() {
        #expect(SockJSJSON.messages(from: Array(#"["a","\u0000b"]"#.utf8), allowSingleString: false) == ["a", "\u{0}b"])
        #expect(SockJSJSON.messages(from: Array(#""a""#.utf8), allowSingleString: false) == nil)
        #expect(SockJSJSON.messages(from: Array(#""a""#.utf8), allowSingleString: true) == ["a"])
        #expect(SockJSJSON.messages(from: Array(#"["a"#.utf8), allowSingleString: true) == nil)
        #expect(SockJSJSON.messages(from: Array("[1]".utf8), allowSingleString: true) == nil)
    }

    @Test func iframeNames() {
        for name in ["iframe.html", "iframe-a.html", "iframe-.html", "iframe-0.1.2.html", "iframe-0.1.2abc-dirty.2144.html"] {
            #expect(SockJSServer<BasicContext>.isIframeName(name), "\(name)")
        }
        for name in ["iframe.htm", "iframe", "IFRAME.HTML", "iframe.HTML", "iframe.xml", "iframeX.html"] {
            #expect(!SockJSServer<BasicContext>.isIframeName(name), "\(name)")
        }
    }
}
