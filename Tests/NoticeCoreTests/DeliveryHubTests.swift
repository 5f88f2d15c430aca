import Synchronization
import Testing

@testable import NoticeCore

final class RecordingSink: NoticeSink {
    let received = Mutex<[PushNotice]>([])
    let closed = Mutex<String?>(nil)
    func push(_ notice: PushNotice) { received.withLock { $0.append(notice) } }
    func close(message: String, detail: String) { closed.withLock { $0 = message } }
    var ids: [Int64] { received.withLock { $0.map(\.key.noticeId) } }
}

@Suite struct DeliveryHubTests {
    func notice(_ id: Int64, to user: String?) -> PushNotice {
        PushNotice(key: NoticeKey(noticeId: id, recipient: user), payload: "{}")
    }

    @Test func deliversToEverySessionOfTheRecipientOnly() {
        let hub = DeliveryHub(maxSessionsPerUser: 4)
        let a1 = RecordingSink()
        let a2 = RecordingSink()
        let b = RecordingSink()
        #expect(hub.register(a1, userId: "a"))
        #expect(hub.register(a2, userId: "a"))
        #expect(hub.register(b, userId: "b"))
        hub.publish([notice(1, to: "a"), notice(2, to: "b"), notice(3, to: "a"), notice(4, to: nil)])
        #expect(a1.ids == [1, 3, 4])
        #expect(a2.ids == [1, 3, 4])
        #expect(b.ids == [2, 4])
    }

    @Test func capsSessionsPerUser() {
        let hub = DeliveryHub(maxSessionsPerUser: 2)
        let sinks = (0..<3).map { _ in RecordingSink() }
        #expect(hub.register(sinks[0], userId: "a"))
        #expect(hub.register(sinks[1], userId: "a"))
        #expect(!hub.register(sinks[2], userId: "a"))
        hub.unregister(sinks[0], userId: "a")
        #expect(hub.register(sinks[2], userId: "a"))
        #expect(hub.sessionCount == 2)
        #expect(hub.sessionCount(of: "a") == 2)
    }

    @Test func closeAllReachesEverySession() {
        let hub = DeliveryHub(maxSessionsPerUser: 2)
        let a = RecordingSink()
        let b = RecordingSink()
        #expect(hub.register(a, userId: "a"))
        #expect(hub.register(b, userId: "b"))
        hub.closeAll(message: "server shutting down", detail: "")
        #expect(a.closed.withLock { $0 } == "server shutting down")
        #expect(b.closed.withLock { $0 } == "server shutting down")
    }

    @Test func unregisteredSessionsGetNothing() {
        let hub = DeliveryHub(maxSessionsPerUser: 2)
        let sink = RecordingSink()
        #expect(hub.register(sink, userId: "a"))
        hub.unregister(sink, userId: "a")
        hub.unregister(sink, userId: "a")
        hub.publish([notice(1, to: "a"), notice(2, to: nil)])
        #expect(sink.ids.isEmpty)
        #expect(hub.sessionCount == 0)
    }
}
