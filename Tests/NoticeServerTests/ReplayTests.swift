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

    /// Reads MESSAGE frames until `count` arrived (or none came for 30 s: a failure, not a
    /// verdict). Never a proof that nothing more comes: that is a marker's job
    /// (``StompTestClient/frames(throughNotice:timeout:)``).
    func messages(_ client: StompTestClient, count: Int) async -> [StompFrame] {
        var frames: [StompFrame] = []
        while frames.count < count, let frame = await client.frames.next(timeout: .seconds(30)) {
            if frame.command == .message { frames.append(frame) }
        }
        return frames
    }

    /// Stores `count` notices 1...count for alice, then one for another user in a later
    /// batch: once that one is stored, the pipeline has handed the first batch to the hub, so
    /// no live copy of them can reach a session registered afterwards (stored is not yet
    /// pushed; a session registered in between rightly gets them live).
    func storeUndelivered(_ count: Int, on server: TestServer, broker: TestBroker) async throws {
        try await broker.publishAll((1...count).map { notice($0) }, to: server.configuration.queue, window: count)
        try await server.waitForStored(count)
        try await broker.publish(notice(1_000, user: "99"), to: server.configuration.queue)
        try await server.waitForStored(count + 1)
    }

    @Test(arguments: TestServer.Store.allCases)
    func anOfflineUserGetsEverythingInOrderOnceWhilePublishingGoesOn(_ store: TestServer.Store) async throws {
        var configuration = try await TestServer.configuration(store: store)
        // However many of the live ones are committed before the SUBSCRIBE, the replay takes them all.
        configuration.replayLimit = 1000
        let server = try await TestServer.start(configuration)
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
        // Nothing twice: a later notice is the next frame.
        try await broker.publish(notice(151), to: queue)
        #expect(await client.noticeIds(throughNotice: "151") == ["151"], "nothing twice")
        client.close()

        // All of it counts as delivered now (auto ack): a new session replays nothing, so the
        // first frame after its RECEIPT is the next live notice.
        try await waitForUndelivered(server, user: "1", [])
        let again = try await server.client()
        #expect(await again.connect(token: "alice")?.command == .connected)
        #expect(await again.subscribe("/notice/remind")?.command == .receipt)
        try await broker.publish(notice(152), to: queue)
        #expect(await again.noticeIds(throughNotice: "152") == ["152"])
        again.close()
        await broker.close()
        try await server.stop()
    }

    /// The replay is read from the store after the RECEIPT: a notice published only once the
    /// replayed ones have arrived cannot be among them, so this outcome is the only one.
    @Test func theReplayLimitKeepsTheNewestWithoutAHole() async throws {
        var configuration = TestServer.configuration()
        configuration.replayLimit = 5
        let server = try await TestServer.start(configuration)
        let broker = await TestBroker()
        try await storeUndelivered(12, on: server, broker: broker)
        let client = try await server.subscribedClient(token: "alice", user: "1")
        #expect(noticeIds(await messages(client, count: 5)) == ["8", "9", "10", "11", "12"])
        // The replay is over (it was written whole before any later event): 13 comes live, and
        // it is the next frame: nothing older follows the replay.
        try await broker.publish(notice(13), to: server.configuration.queue)
        #expect(await client.noticeIds(throughNotice: "13") == ["13"])
        client.close()
        // The older ones stay undelivered: listed by the API, replayed by a later SUBSCRIBE.
        try await waitForUndelivered(server, user: "1", Array(1...7))
        await broker.close()
        try await server.stop()
    }

    /// A notice committed while the SUBSCRIBE is handled comes exactly once, in the replay or
    /// live, and never leaves a hole (docs/decisions.md): whichever way this run interleaves,
    /// what arrives is a contiguous run of ids ending at the newest, of `limit` or `limit + 1`
    /// notices, each once, and the store's undelivered set is exactly the rest.
    @Test func aNoticeCommittedDuringTheSubscribeComesOnceWithoutAHole() async throws {
        let limit = 5
        var configuration = TestServer.configuration()
        configuration.replayLimit = limit
        let server = try await TestServer.start(configuration)
        let broker = await TestBroker()
        let queue = server.configuration.queue
        try await storeUndelivered(12, on: server, broker: broker)

        let client = try await server.client()
        #expect(await client.connect(token: "alice")?.command == .connected)
        // 13 races the SUBSCRIBE: committed before the replay's read, or after it.
        let racing = Task { try await broker.publish(notice(13), to: queue) }
        #expect(await client.subscribe("/notice/1/remind")?.command == .receipt)
        // The first `limit` MESSAGEs are the replay (written whole before any live one);
        // only then may the marker be published, so that it cannot be in the replay itself.
        var received = await messages(client, count: limit)
        try await racing.value
        try await server.waitForStored(14)
        try await broker.publish(notice(14), to: queue)
        received += await client.frames(throughNotice: "14")
        let ids = noticeIds(received)
        #expect(ids.last == "14", "\(ids)")
        let run = ids.dropLast().compactMap { Int64($0) }
        #expect(run.count == ids.count - 1, "only MESSAGEs: \(ids)")
        #expect(run.count == limit || run.count == limit + 1, "\(ids)")
        #expect(run.last == 13, "the run ends at the newest: \(ids)")
        let first = run.first ?? 0
        #expect(run == Array(first...(first + Int64(run.count) - 1)), "contiguous, each once: \(ids)")
        client.close()
        // Everything older than the run stays undelivered, nothing else does.
        try await waitForUndelivered(server, user: "1", Array(1..<max(1, first)))
        await broker.close()
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func replayIsTheUsersOwnAndTheAnnouncementsAndXReplayNoneTurnsItOff(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.configuration(store: store))
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
        let topic = try await server.client()
        #expect(await topic.connect(token: "alice")?.command == .connected)
        #expect(await topic.subscribe("/topic/notice")?.command == .receipt)
        let alice = try await server.client()
        #expect(await alice.connect(token: "alice")?.command == .connected)
        #expect(await alice.subscribe("/notice/1/remind")?.command == .receipt)

        // A live broadcast reaches all three after whatever each replayed (a replay is written
        // before any later event of its connection): up to it, each got exactly its replay.
        try await broker.publish(#"{"id":5,"broadcast":true,"title":"marker"}"#, to: queue)
        #expect(await quiet.noticeIds(throughNotice: "5") == ["5"], "x-replay:none replays nothing")
        #expect(await topic.noticeIds(throughNotice: "5") == ["5"], "the legacy broadcast topic replays nothing")
        #expect(await alice.noticeIds(throughNotice: "5") == ["1", "3", "5"], "the user's own and the announcements")
        for client in [quiet, topic, alice] { client.close() }
        await broker.close()
        try await server.stop()
    }

    @Test(arguments: TestServer.Store.allCases)
    func clientAckUnackedNoticesComeBackOnTheNextConnection(_ store: TestServer.Store) async throws {
        let server = try await TestServer.start(try await TestServer.configuration(store: store))
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
        let server = try await TestServer.start(try await TestServer.configuration(store: store))
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
