import Foundation
import NoticeCore
import STOMP
import Testing

@testable import NoticeServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The HTTP API (SPEC §7) against the real service, broker and store.
@Suite struct NoticeAPITests {
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    func call(_ server: TestServer, _ method: String, _ path: String, token: String? = nil, body: String? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)\(path)")!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields { headers["\(name)".lowercased()] = "\(value)" }
        return Answer(status: http.statusCode, headers: headers, body: data)
    }

    func ids(_ answer: Answer) -> [String] {
        (answer.json["notices"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    @Test(arguments: TestServer.Store.allCases)
    func listReadAndPaging(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.configuration(store: store))
        let broker = await TestBroker()
        // The broadcast first: an announcement, the oldest item of every user's list.
        let records =
            [#"{"id":91,"broadcast":true,"title":"all"}"#] + (1...5).map { #"{"id":\#($0),"userId":"1","title":"n\#($0)"}"# }
            + [#"{"id":90,"userId":"2","title":"bob's"}"#]
        try await broker.publishAll(records, to: server.configuration.queue, window: 10)
        try await server.waitForStored(7)

        let all = try await call(server, "GET", "/api/notices", token: "alice")
        #expect(all.status == 200)
        #expect(all.headers["content-type"]?.hasPrefix("application/json") == true)
        #expect(ids(all) == ["5", "4", "3", "2", "1", "91"])
        let first = try #require((all.json["notices"] as? [[String: Any]])?.first)
        let pushed = try #require(first["notice"] as? [String: Any])
        #expect(pushed["title"] as? String == "n5")
        // One time format everywhere: the list's times are RFC 3339, like the pushed notice's.
        let createdAt = try #require(first["createdAt"] as? String)
        #expect(createdAt == pushed["createdAt"] as? String)
        #expect(createdAt.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
        #expect(first["readAt"] is NSNull)
        #expect(all.json["next"] is NSNull)

        #expect(try await call(server, "POST", "/api/notices/4/read", token: "alice").status == 204)
        #expect(try await call(server, "POST", "/api/notices/4/read", token: "alice").status == 204)
        let others = try await call(server, "POST", "/api/notices/90/read", token: "alice")
        #expect(others.status == 404)
        #expect(others.json["error"] as? String == "not_found")
        #expect(try await call(server, "POST", "/api/notices/12345/read", token: "alice").status == 404)
        #expect(try await call(server, "POST", "/api/notices/x/read", token: "alice").status == 404)
        #expect(try await call(server, "POST", "/api/notices/90/read", token: "bob").status == 204)

        let unread = try await call(server, "GET", "/api/notices?unread=true", token: "alice")
        #expect(ids(unread) == ["5", "3", "2", "1", "91"])
        let read = try #require((try await call(server, "GET", "/api/notices?limit=2", token: "alice").json["notices"] as? [[String: Any]])?.last)
        #expect(read["id"] as? String == "4")
        #expect((read["readAt"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
        let page1 = try await call(server, "GET", "/api/notices?limit=2", token: "alice")
        #expect(ids(page1) == ["5", "4"])
        let next = try #require(page1.json["next"] as? String)
        let page2 = try await call(server, "GET", "/api/notices?limit=2&before=\(next)", token: "alice")
        #expect(ids(page2) == ["3", "2"])
        let page3 = try await call(server, "GET", "/api/notices?limit=3&before=2&unread=true", token: "alice")
        #expect(ids(page3) == ["1", "91"])
        #expect(page3.json["next"] is NSNull)
        #expect(ids(try await call(server, "GET", "/api/notices", token: "bob")) == ["90", "91"])

        for bad in ["limit=0", "limit=201", "limit=x", "unread=maybe", "before=abc", "before=90"] {
            let answer = try await call(server, "GET", "/api/notices?\(bad)", token: "alice")
            #expect(answer.status == 400, "\(bad)")
            #expect(answer.json["error"] as? String == "invalid_request")
        }
        await broker.close()
        try await server.stop()
    }

    @Test func everyRouteNeedsAValidBearerToken() async throws {
        let server = try await TestServer.start()
        for (method, path) in [("GET", "/api/notices"), ("POST", "/api/notices/1/read"), ("POST", "/api/notices")] {
            let missing = try await call(server, method, path, body: method == "POST" ? "{}" : nil)
            #expect(missing.status == 401, "\(method) \(path)")
            #expect(missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
            #expect(missing.json["error"] as? String == "unauthorized")
            let invalid = try await call(server, method, path, token: "not-a-token", body: method == "POST" ? "{}" : nil)
            #expect(invalid.status == 401)
            #expect(invalid.json["error"] as? String == "invalid_token")
            #expect(!String(decoding: invalid.body, as: UTF8.self).contains("not-a-token"))
        }
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func publishGoesThroughTheQueueToTheBrowser(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.configuration(store: store))
        let alice = try await server.subscribedClient(token: "alice", user: "1")

        let withoutId = try await call(server, "POST", "/api/notices", token: "bob", body: #"{"userId":"1","title":"from HTTP"}"#)
        #expect(withoutId.status == 202)
        let assigned = try #require(withoutId.json["id"] as? String)
        let message = try #require(await alice.frames.next())
        #expect(message.headers["notice-id"] == assigned)
        let pushed = try #require(try JSONSerialization.jsonObject(with: Data(message.body)) as? [String: Any])
        #expect(pushed["id"] as? String == assigned)
        #expect(pushed["title"] as? String == "from HTTP")

        let withId = try await call(server, "POST", "/api/notices", token: "bob", body: #"{"id":"4242","userId":1,"title":"t"}"#)
        #expect(withId.status == 202)
        #expect(withId.json["id"] as? String == "4242")
        #expect(try #require(await alice.frames.next()).headers["notice-id"] == "4242")

        let invalid = try await call(server, "POST", "/api/notices", token: "bob", body: #"{"title":"no recipient"}"#)
        #expect(invalid.status == 400)
        #expect(invalid.json["error"] as? String == "invalid_notice")
        #expect((invalid.json["message"] as? String)?.contains("userId") == true)
        #expect(try await call(server, "POST", "/api/notices", token: "bob", body: "not json").status == 400)
        let huge = String(repeating: "x", count: 200_000)
        #expect(try await call(server, "POST", "/api/notices", token: "bob", body: #"{"userId":"1","content":"\#(huge)"}"#).status == 413)
        // Nothing invalid was queued: the next valid publish is the next frame.
        let marker = try await call(server, "POST", "/api/notices", token: "bob", body: #"{"id":"4243","userId":"1","title":"marker"}"#)
        #expect(marker.status == 202)
        #expect(await alice.noticeIds(throughNotice: "4243") == ["4243"], "nothing invalid was queued")
        alice.close()
        try await server.stop()
    }

    @Test func publishNeedsTheScope() async throws {
        let auth = try await AuthorizationServer.start()
        auth.issue("reader", to: "5", scopes: "read")
        auth.issue("publisher", to: "svc", scopes: "read notice:publish")
        var configuration = TestServer.configuration()
        configuration.devTokens = nil
        configuration.introspection = auth.introspection()
        let server = try await TestServer.start(configuration)
        let body = #"{"userId":"5","title":"t"}"#
        let refused = try await call(server, "POST", "/api/notices", token: "reader", body: body)
        #expect(refused.status == 403)
        #expect(refused.json["error"] as? String == "insufficient_scope")
        #expect(try await call(server, "POST", "/api/notices", token: "publisher", body: body).status == 202)
        #expect(try await call(server, "GET", "/api/notices", token: "reader").status == 200)
        try await server.stop()
        try await auth.stop()
    }
}
