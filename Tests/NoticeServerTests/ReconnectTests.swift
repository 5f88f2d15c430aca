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

@Suite(.serialized) struct ReconnectTests {
    @Test func aDroppedBrokerConnectionIsReestablishedAndSessionsStayOpen() async throws {
        let server = try await TestServer.start()
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        let broker = await TestBroker()
        try await broker.publish(#"{"id":1,"userId":1}"#, to: server.configuration.queue)
        #expect(await alice.frames.next()?.command == .message)

        // The broker closes the service's connection, as on a broker restart or a network cut.
        let name = "notice-service \(server.configuration.nodeId)"
        let line = try #require(
            try await rabbitmqctl("list_connections", "-q", "pid", "client_properties").split(separator: "\n").first { $0.contains(name) }
        )
        let pid = try #require(line.split(separator: "\t").first)
        _ = try await rabbitmqctl("close_connection", String(pid), "test: simulated broker failure")

        try await broker.publish(#"{"id":2,"userId":1}"#, to: server.configuration.queue)
        let second = try #require(await alice.frames.next(timeout: .seconds(30)))
        #expect(second.bodyText?.contains("\"id\":\"2\"") == true)
        let deadline = ContinuousClock.now + .seconds(30)
        while try await server.get("/health/ready").status != 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await server.get("/health/ready").status == 200)
        alice.close()
        await broker.close()
        try await server.stop()
    }
}
