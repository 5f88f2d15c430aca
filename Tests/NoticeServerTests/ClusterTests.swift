import Foundation
import NoticeCore
import STOMP
import Testing

@testable import NoticeServer

/// Delivery across nodes through RabbitMQ (SPEC §8), with two real nodes in this process sharing
/// one store and one deliver exchange.
@Suite struct ClusterTests {
    struct Cluster {
        let consumer: TestServer
        let other: TestServer
        let exchange: String
    }

    /// Node `consumer` consumes the notice queue; node `other` consumes a queue of its own that
    /// nobody publishes to, so whatever its sessions receive crossed over from `consumer`.
    func startCluster() async throws -> Cluster {
        let (first, second) = try await TestServer.clusterConfigurations()
        return Cluster(consumer: try await TestServer.start(first), other: try await TestServer.start(second), exchange: first.deliverExchange)
    }

    func bindings(_ exchange: String) async throws -> [String] {
        try await rabbitmqctl("list_bindings", "-q", "source_name", "routing_key").split(separator: "\n")
            .filter { $0.hasPrefix(exchange + "\t") }.map { String($0.split(separator: "\t").last ?? "") }
    }

    @Test func noticesReachEverySessionOnceWhicheverNodeConsumedThem() async throws {
        let cluster = try await startCluster()
        let aliceOnOther = try await cluster.other.subscribedClient(token: "alice", user: "1")
        let bobOnConsumer = try await cluster.consumer.subscribedClient(token: "bob", user: "2")
        let bobOnOther = try await cluster.other.subscribedClient(token: "bob", user: "2")
        let carolTopic = try await cluster.other.client()
        #expect(await carolTopic.connect(token: "carol")?.command == .connected)
        #expect(await carolTopic.subscribe("/topic/notice")?.command == .receipt)

        let broker = await TestBroker()
        var records: [String] = []
        for id in 1...30 { records.append(#"{"id":\#(id),"userId":"\#(id % 2 == 0 ? 2 : 1)","title":"t"}"#) }
        records.append(#"{"id":99,"broadcast":true,"title":"all"}"#)
        // Then a broadcast marker for every session: one node consumes in queue order and
        // forwards in that order, so each session has had all it will get of the rest when the
        // marker comes — exactly its own, once, in order.
        records.append(#"{"id":100,"broadcast":true,"title":"marker"}"#)
        try await broker.publishAll(records, to: cluster.consumer.configuration.queue, window: 50)

        let odd = (1...30).filter { $0 % 2 == 1 }.map(String.init)
        let even = (1...30).filter { $0 % 2 == 0 }.map(String.init)
        #expect(await aliceOnOther.noticeIds(throughNotice: "100") == odd + ["99", "100"])
        #expect(await bobOnConsumer.noticeIds(throughNotice: "100") == even + ["99", "100"])
        #expect(await bobOnOther.noticeIds(throughNotice: "100") == even + ["99", "100"])
        #expect(await carolTopic.noticeIds(throughNotice: "100") == ["99", "100"])

        for client in [aliceOnOther, bobOnConsumer, bobOnOther, carolTopic] { client.close() }
        await broker.close()
        try await cluster.other.stop()
        try await cluster.consumer.stop()
    }

    @Test func aNodeIsBoundToExactlyTheUsersItHoldsAndRebindsAfterAReconnect() async throws {
        let cluster = try await startCluster()
        #expect(try await bindings(cluster.exchange).sorted() == ["broadcast", "broadcast"])
        let alice1 = try await cluster.other.subscribedClient(token: "alice", user: "1")
        let alice2 = try await cluster.other.subscribedClient(token: "alice", user: "1")
        #expect(try await bindings(cluster.exchange).sorted() == ["broadcast", "broadcast", "user.1"])
        alice1.close()
        #expect(await alice1.waitUntilClosed())
        // The node has let alice1 go once its session gauge drops to alice2's one (the relay
        // decides to keep or drop the binding before that, synchronously).
        let released = ContinuousClock.now + .seconds(30)
        while try await MetricsTests.value(cluster.other.get("/metrics").body, #"notice_sessions{transport="websocket"}"#) != 1,
            ContinuousClock.now < released
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await bindings(cluster.exchange).contains("user.1"), "one session is left")
        let broker = await TestBroker()
        try await broker.publish(#"{"id":6,"userId":"1","title":"one session is left"}"#, to: cluster.consumer.configuration.queue)
        #expect(await alice2.noticeIds(throughNotice: "6") == ["6"])

        // The broker drops the relay's connection: it reconnects and declares the binding again.
        // Its exclusive queue goes with the old connection, binding and all: wait for a new
        // connection (another pid), then for the binding on it.
        let name = "notice-service \(cluster.other.configuration.nodeId) relay"
        func relayConnection() async throws -> String? {
            try await rabbitmqctl("list_connections", "-q", "pid", "client_properties").split(separator: "\n")
                .first { $0.contains(name) }.flatMap { $0.split(separator: "\t").first.map(String.init) }
        }
        let dropped = try #require(try await relayConnection())
        _ = try await rabbitmqctl("close_connection", dropped, "test: simulated failure")
        let deadline = ContinuousClock.now + .seconds(30)
        while try await relayConnection() ?? dropped == dropped, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        while try await !bindings(cluster.exchange).contains("user.1"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await bindings(cluster.exchange).contains("user.1"), "bound again after the reconnect")
        try await broker.publish(#"{"id":7,"userId":"1","title":"after the reconnect"}"#, to: cluster.consumer.configuration.queue)
        #expect(await alice2.noticeIds(throughNotice: "7") == ["7"])

        alice2.close()
        #expect(await alice2.waitUntilClosed())
        let unbound = ContinuousClock.now + .seconds(30)
        while try await bindings(cluster.exchange).contains("user.1"), ContinuousClock.now < unbound {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await !bindings(cluster.exchange).contains("user.1"), "unbound after the last session")
        await broker.close()
        try await cluster.other.stop()
        try await cluster.consumer.stop()
    }

    @Test func userIdsAreOneRoutingWordNeverAWildcard() {
        #expect(ClusterRelay.routingKey(forUser: "42") == "user.42")
        #expect(ClusterRelay.routingKey(forUser: "a.b*#%") == "user.a%2Eb%2A%23%25")
        #expect(ClusterRelay.routingKey(forUser: "zoë") == "user.zoë")
    }
}
