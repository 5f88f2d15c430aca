import Foundation
import NoticeCore
import NoticeStore
import RabbitMQ
import STOMP
import Testing

@testable import NoticeServer

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite(.serialized) struct DemoTests {
    @Test func theDemoPagePublishesThroughTheRealQueue() async throws {
        var configuration = TestServer.configuration()
        configuration.demo = true
        let server = try await TestServer.start(configuration)
        let page = try await server.get("/")
        #expect(page.status == 200)
        #expect(page.body.contains("notice-service demo"))
        let users = try await server.get("/demo/users")
        #expect(users.body.contains("\"userId\":\"1\""))
        let alice = try await server.subscribedClient(token: "alice", user: "1")

        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.port)/demo/publish")!)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"userId":"1","title":"from the page"}"#.utf8)
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as! HTTPURLResponse).statusCode == 202)
        let message = try #require(await alice.frames.next())
        #expect(message.bodyText?.contains("from the page") == true)

        request.httpBody = Data(#"{"title":"nobody"}"#.utf8)
        let (body, invalid) = try await URLSession.shared.data(for: request)
        #expect((invalid as! HTTPURLResponse).statusCode == 400)
        #expect(String(decoding: body, as: UTF8.self).contains("invalid_notice"))
        alice.close()
        try await server.stop()
    }
}
