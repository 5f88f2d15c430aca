import Foundation
import NIOHTTP1
import NoticeTesting
import Testing

@testable import SockJS

/// The rules of sockjs-protocol 0.3.3 (its test suite's prose), one test each, against a
/// real server: an echo endpoint and one that closes sessions at once, with the suite's
/// 4 KiB response limit and short timers.
@Suite(.serialized) struct SockJSProtocolTests {
    static let noCache = "no-store, no-cache, must-revalidate, max-age=0"

    func session(_ server: EchoServer, _ base: String? = nil) -> String {
        (base ?? server.base) + "/000/" + UUID().uuidString
    }

    @Test func greetingAtTheBaseURLAndNotFoundBelowIt() async throws {
        let server = try await EchoServer.start()
        for url in [server.base, server.base + "/"] {
            let r = try await HTTPTestClient.get(url)
            #expect(r.status == 200)
            #expect(r["content-type"] == "text/plain; charset=UTF-8")
            #expect(r.body == "Welcome to SockJS!\n")
            #expect(r["set-cookie"] == nil)
        }
        for suffix in ["/a", "/a.html", "/a/a", "/a/a/"] {
            #expect(try await HTTPTestClient.get(server.base + suffix).status == 404, "\(suffix)")
        }
        try await server.stop()
    }

    @Test func infoWithCORSNoCacheAndEntropy() async throws {
        let server = try await EchoServer.start()
        let r1 = try await HTTPTestClient.get(server.base + "/info")
        #expect(r1.status == 200)
        #expect(r1["content-type"] == "application/json; charset=UTF-8")
        #expect(r1["cache-control"] == Self.noCache)
        #expect(r1["access-control-allow-origin"] == "*")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(r1.body.utf8)) as? [String: Any])
        #expect(info["websocket"] as? Bool == true)
        #expect(info["cookie_needed"] as? Bool == false)
        #expect(info["origins"] as? [String] == ["*:*"])
        let r2 = try await HTTPTestClient.get(server.base + "/info", headers: [("Origin", "http://a.example")])
        #expect(r2["access-control-allow-origin"] == "http://a.example")
        #expect(r2["access-control-allow-credentials"] == "true")
        let info2 = try #require(try JSONSerialization.jsonObject(with: Data(r2.body.utf8)) as? [String: Any])
        #expect(info["entropy"] as? Int != nil)
        #expect(info["entropy"] as? Int != info2["entropy"] as? Int)
        try await server.stop()
    }

    @Test func optionsAreCacheableAndAllowTheMethods() async throws {
        let server = try await EchoServer.start()
        let cases = [
            ("/info", "OPTIONS, GET"), ("/abc/abc/xhr", "OPTIONS, POST"), ("/abc/abc/xhr_send", "OPTIONS, POST"),
            ("/abc/abc/xhr_streaming", "OPTIONS, POST"),
        ]
        for (path, methods) in cases {
            for origin in [nil, "test", "null"] as [String?] {
                let r = try await HTTPTestClient.send(.OPTIONS, server.base + path, headers: origin.map { [("Origin", $0)] } ?? [])
                #expect(r.status == 204)
                #expect(r["cache-control"]?.contains("public") == true)
                #expect(r["cache-control"]?.contains("max-age=31536000") == true)
                #expect(r["expires"] != nil)
                #expect(Int(r["access-control-max-age"] ?? "") ?? 0 > 1_000_000)
                #expect(r["access-control-allow-methods"] == methods)
                #expect(r.body.isEmpty)
                #expect(r["access-control-allow-origin"] == ((origin == nil || origin == "null") ? "*" : origin))
            }
        }
        try await server.stop()
    }

    @Test func iframePageIsCacheableWithETagAnd304() async throws {
        let server = try await EchoServer.start()
        for suffix in ["/iframe.html", "/iframe-a.html", "/iframe-0.1.2.html", "/iframe-0.1.2abc-dirty.2144.html?t=123"] {
            let r = try await HTTPTestClient.get(server.base + suffix)
            #expect(r.status == 200, "\(suffix)")
            #expect(r["content-type"] == "text/html; charset=UTF-8")
            #expect(r["cache-control"]?.contains("max-age=31536000") == true)
            #expect(r["expires"] != nil && r["etag"] != nil && r["last-modified"] == nil)
            #expect(r.body.hasPrefix("<!DOCTYPE html>"))
            #expect(r.body.contains("_sockjs_onload = function(){SockJS.bootstrap_iframe();};"))
            #expect(r.body.contains("<script src=\"https://"))
        }
        for suffix in ["/iframe.htm", "/iframe", "/IFRAME.HTML", "/iframe.xml", "/iframe-/.html"] {
            #expect(try await HTTPTestClient.get(server.base + suffix).status == 404, "\(suffix)")
        }
        let first = try await HTTPTestClient.get(server.base + "/iframe.html")
        let etag = try #require(first["etag"])
        #expect(try await HTTPTestClient.get(server.base + "/iframe.html")["etag"] == etag)
        let cached = try await HTTPTestClient.get(server.base + "/iframe.html", headers: [("If-None-Match", etag)])
        #expect(cached.status == 304)
        #expect(cached["content-type"] == nil)
        #expect(cached.body.isEmpty)
        try await server.stop()
    }

    @Test func sessionIdsWithDotsOrEmptyAreRefused() async throws {
        let server = try await EchoServer.start()
        for part in ["/a/a", "/_/_", "/1/1", "/abcdefgh_i-j%20/abcdefg_i-j%20"] {
            let r = try await HTTPTestClient.post(server.base + part + "/xhr")
            #expect(r.status == 200, "\(part)")
            #expect(r.body == "o\n")
        }
        for part in ["//", "/a./a", "/a/a.", "/./.", "/", "///"] {
            #expect(try await HTTPTestClient.get(server.base + part + "/xhr").status == 404, "\(part)")
            #expect(try await HTTPTestClient.post(server.base + part + "/xhr").status == 404, "\(part)")
        }
        try await server.stop()
    }

    @Test func xhrPollingSessionIgnoresServerIdAndEchoes() async throws {
        let server = try await EchoServer.start()
        let id = UUID().uuidString
        let open = try await HTTPTestClient.post(server.base + "/000/\(id)/xhr")
        #expect(open.body == "o\n")
        #expect(open["content-type"] == "application/javascript; charset=UTF-8")
        #expect(open["cache-control"] == Self.noCache)
        #expect(open["access-control-allow-origin"] == "*")
        let send = try await HTTPTestClient.post(server.base + "/000/\(id)/xhr_send", body: #"["a"]"#)
        #expect(send.status == 204)
        #expect(send.body.isEmpty)
        #expect(send["content-type"] == "text/plain; charset=UTF-8")
        #expect(send["cache-control"] == Self.noCache)
        #expect(try await HTTPTestClient.post(server.base + "/999/\(id)/xhr").body == "a[\"a\"]\n")
        try await server.stop()
    }

    @Test func xhrSendErrors() async throws {
        let server = try await EchoServer.start()
        #expect(try await HTTPTestClient.post(session(server) + "/xhr_send", body: #"["x"]"#).status == 404)
        let url = session(server)
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "o\n")
        let broken = try await HTTPTestClient.post(url + "/xhr_send", body: #"["x"#)
        #expect(broken.status == 500)
        #expect(broken.body.contains("Broken JSON encoding."))
        let empty = try await HTTPTestClient.post(url + "/xhr_send", body: "")
        #expect(empty.status == 500)
        #expect(empty.body.contains("Payload expected."))
        // Bounded: a body past the message limit (8 KiB here) is refused.
        let huge = try await HTTPTestClient.post(url + "/xhr_send", body: "[\"" + String(repeating: "x", count: 9000) + "\"]")
        #expect(huge.status == 413)
        for contentType in ["text/plain", "T", "application/json", "application/xml", ""] {
            #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["a"]"#, headers: [("Content-Type", contentType)]).status == 204)
        }
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "a[\"a\",\"a\",\"a\",\"a\",\"a\"]\n")
        try await server.stop()
    }

    @Test func corsEchoesRequestedHeaders() async throws {
        let server = try await EchoServer.start()
        let r = try await HTTPTestClient.post(session(server) + "/xhr", headers: [("Access-Control-Request-Headers", "a, b, c")])
        #expect(r["access-control-allow-headers"] == "a, b, c")
        #expect(try await HTTPTestClient.post(session(server) + "/xhr")["access-control-allow-headers"] == nil)
        try await server.stop()
    }

    @Test func secondReceiverGetsAnotherConnectionStillOpen() async throws {
        let server = try await EchoServer.start()
        let url = session(server)
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "o\n")
        // Two polls at once: whichever attaches second is told so at once and ends; the one
        // that attached waits, and still gets the next message. Which is which is the
        // scheduler's business, not the test's.
        let polls = [
            try await HTTPTestClient.stream(.POST, url + "/xhr", delimiter: "\n"),
            try await HTTPTestClient.stream(.POST, url + "/xhr", delimiter: "\n"),
        ]
        #expect(polls.allSatisfy { $0.status == 200 })
        var refused = 0
        var answer: String?
        let deadline = ContinuousClock.now + .seconds(30)
        polling: while ContinuousClock.now < deadline {
            for (index, poll) in polls.enumerated() {
                if let piece = await poll.next(timeout: .milliseconds(10)) {
                    (refused, answer) = (index, piece)
                    break polling
                }
            }
        }
        #expect(answer == "c[2010,\"Another connection still open\"]\n")
        #expect(await polls[refused].ended())
        let waiting = polls[1 - refused]
        #expect(try await HTTPTestClient.post(url + "/xhr_send", body: #"["b"]"#).status == 204)
        #expect(await waiting.next() == "a[\"b\"]\n")
        try await server.stop()
    }

    @Test func closedSessionServesGoAwayUntilForgotten() async throws {
        let server = try await EchoServer.start()
        let url = session(server, server.closeBase)
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "o\n")
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "c[3000,\"Go away!\"]\n")
        #expect(try await HTTPTestClient.post(url + "/xhr").body == "c[3000,\"Go away!\"]\n")
        try await server.stop()
    }
}
