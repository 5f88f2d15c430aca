import Foundation
import NoticeCore
import NoticeStore
import STOMP
import Testing

@testable import NoticeServer

/// Replay on SUBSCRIBE and the ack modes (SPEC §4), end to end: real broker, real SQLite file.
@Suite struct ReplayTests {
    func notice(_ id: Int, user: String = "1") -> String {
        #"{"id":\#(id),"userId":"\#(user)","title":"n\#(id)"}"#
    }

    func noticeIds(_ frames: [StompFrame]) -> [String] {
        frames.map { $0.headers["notice-id"] ?? "?" }
    }

    /// Waits until the user's undelivered rows are `expected` (the delivery recorder commits
    /// every 200 ms, later on a loaded machine).
    func waitForUndelivered(_ server: TestServer, user: String, _ expected: [Int64]) async throws {
        let store = try server.openStore()
        let deadline = ContinuousClock.now + .seconds(20)
        var undelivered = try await store.undelivered(userId: user, limit: 1_000).map(\.noticeId)
        while undelivered != expected, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            undelivered = try await store.undelivered(userId: user, limit: 1_000).map(\.noticeId)
        }
        try await store.close()
        #expect(undelivered == expected)
    }

    /// Reads MESSAGE frames until `count` arrived or none came for `quiet`.
    func messages(_ client: StompTestClient, count: Int, quiet: Duration = .seconds(20)) async -> [StompFrame] {
        var frames: [StompFrame] = []
        while frames.count < count, let frame = await client.frames.next(timeout: quiet) {
            if frame.command == .message { frames.append(frame) }
        }
        return frames
    }

    @Test(arguments: TestServer.Store.allCases)
    func anOfflineUserGetsEverythingInOrderOnceWhilePublishingGoesOn(_ store: TestServer.Store) async throws {
        var settings = try await TestServer.settings(store: store)
        // However many of the live ones are committed before the SUBSCRIBE, the replay takes them all.
        settings["NOTICE_REPLAY_LIMIT"] = "1000"
        let server = try await TestServer.start(settings)
        let broker = await TestBroker()
        let queue = server.configuration.queue
        try await broker.publishAll((1...50).map { notice($0) }, to: queue, window: 50)
        try await server.waitForStored(50)

        // Publishing goes on while the user subscribes and the replay runs.
        let live = Task {
            for id in 51...150 {
                try await broker.publish(notice(id), to: queue)
                if id % 10 == 0 { try await Task.sleep(for: .milliseconds(2)) }
            }
        }
        let client = try await server.client()
        #expect(await client.connect(token: "alice")?.command == .connected)
        #expect(await client.subscribe("/notice/1/remind")?.command == .receipt)
        let received = await messages(client, count: 150)
        try await live.value
        #expect(noticeIds(received) == (1...150).map(String.init))
        #expect(await client.frames.next(timeout: .milliseconds(500)) == nil, "nothing twice")
        client.close()

        // All of it counts as delivered now (auto ack): a new session replays nothing.
        try await waitForUndelivered(server, user: "1", [])
        let again = try await server.client()
        #expect(await again.connect(token: "alice")?.command == .connected)
        #expect(await again.subscribe("/notice/remind")?.command == .receipt)
        try await broker.publish(notice(151), to: queue)
        #expect(noticeIds(await messages(again, count: 1)) == ["151"])
        #expect(await again.frames.next(timeout: .milliseconds(300)) == nil)
        again.close()
        await broker.close()
        try await server.stop()
    }

    @Test func theReplayLimitKeepsTheNewestWithoutAHole() async throws {
        var settings = TestServer.settings()
        settings["NOTICE_REPLAY_LIMIT"] = "5"
        let server = try await TestServer.start(settings)
        let broker = await TestBroker()
        try await broker.publishAll((1...12).map { notice($0) }, to: server.configuration.queue, window: 12)
        try await server.waitForStored(12)
        let client = try await server.subscribedClient(token: "alice", user: "1")
        try await broker.publish(notice(13), to: server.configuration.queue)
        #expect(noticeIds(await messages(client, count: 6)) == ["8", "9", "10", "11", "12", "13"])
        client.close()
        // The older ones stay undelivered: listed by the API, replayed by a later SUBSCRIBE.
        try await waitForUndelivered(server, user: "1", Array(1...7))
        await broker.close()
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func replayIsTheUsersOwnAndXReplayNoneTurnsItOff(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.settings(store: store))
        let broker = await TestBroker()
        let queue = server.configuration.queue
        try await broker.publishAll([notice(1), notice(2, user: "2"), #"{"id":3,"broadcast":true,"title":"all"}"#], to: queue, window: 3)
        try await server.waitForStored(3)
        // Stored is not yet pushed: the pipeline hands a batch to the hub after its commit, and
        // a session registered in between rightly gets it live. A later notice, stored in a
        // later batch, means the pipeline is done with the first one.
        try await broker.publish(notice(4, user: "99"), to: queue)
        try await server.waitForStored(4)

        let quiet = try await server.client()
        #expect(await quiet.connect(token: "alice")?.command == .connected)
        #expect(await quiet.subscribe("/notice/1/remind", extra: ["x-replay": "none"])?.command == .receipt)
        #expect(await quiet.frames.next(timeout: .milliseconds(500)) == nil)

        let topic = try await server.client()
        #expect(await topic.connect(token: "alice")?.command == .connected)
        #expect(await topic.subscribe("/topic/notice")?.command == .receipt)
        #expect(await topic.frames.next(timeout: .milliseconds(300)) == nil, "broadcasts are not replayed")

        let alice = try await server.client()
        #expect(await alice.connect(token: "alice")?.command == .connected)
        #expect(await alice.subscribe("/notice/1/remind")?.command == .receipt)
        #expect(noticeIds(await messages(alice, count: 5, quiet: .seconds(1))) == ["1"])
        for client in [quiet, topic, alice] { client.close() }
        await broker.close()
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func clientAckUnackedNoticesComeBackOnTheNextConnection(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.settings(store: store))
        let broker = await TestBroker()
        let first = try await server.client()
        #expect(await first.connect(token: "alice")?.command == .connected)
        #expect(await first.subscribe("/notice/1/remind", extra: ["ack": "client"])?.command == .receipt)
        try await broker.publishAll((1...4).map { notice($0) }, to: server.configuration.queue, window: 4)
        let frames = await messages(first, count: 4)
        #expect(noticeIds(frames) == ["1", "2", "3", "4"])
        let ackIds = frames.compactMap { $0.headers["ack"] }
        #expect(ackIds.count == 4)
        // Cumulative: acking the second acks the first two.
        first.send(StompFrame(.ack, headers: ["id": ackIds[1], "receipt": "a1"]))
        #expect(await first.frames.next()?.headers["receipt-id"] == "a1")
        // A NACK leaves the third undelivered.
        first.send(StompFrame(.nack, headers: ["id": ackIds[2], "receipt": "n1"]))
        #expect(await first.frames.next()?.headers["receipt-id"] == "n1")
        first.send(StompFrame(.disconnect, headers: ["receipt": "bye"]))
        #expect(await first.frames.next()?.command == .receipt)
        try await waitForUndelivered(server, user: "1", [3, 4])

        let second = try await server.client()
        #expect(await second.connect(token: "alice")?.command == .connected)
        #expect(await second.subscribe("/notice/remind", extra: ["ack": "client-individual"])?.command == .receipt)
        let replayed = await messages(second, count: 2)
        #expect(noticeIds(replayed) == ["3", "4"])
        // client-individual: acking the last leaves the one before it undelivered.
        second.send(StompFrame(.ack, headers: ["id": replayed[1].headers["ack"] ?? "", "receipt": "a2"]))
        #expect(await second.frames.next()?.headers["receipt-id"] == "a2")
        second.close()
        try await waitForUndelivered(server, user: "1", [3])
        await broker.close()
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func readOverStompShowsInTheStore(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.settings(store: store))
        let broker = await TestBroker()
        let alice = try await server.subscribedClient(token: "alice", user: "1")
        try await broker.publish(notice(77), to: server.configuration.queue)
        #expect(noticeIds(await messages(alice, count: 1)) == ["77"])
        alice.send(StompFrame(.send, headers: ["destination": "/app/notices/read", "receipt": "r"], body: Array(#"{"id":"77"}"#.utf8)))
        #expect(await alice.frames.next()?.headers["receipt-id"] == "r")
        let store = try server.openStore()
        #expect(try await store.row(NoticeKey(noticeId: 77, recipient: "1"))?.readAt != nil)
        try await store.close()
        alice.close()
        await broker.close()
        try await server.stop()
    }
}
