import Foundation
import NoticeCore
import Testing

@testable import NoticeStore

/// WAL checkpoints run on the checkpointer's own connection, not inside a commit.
@Suite struct SQLiteCheckpointerTests {
    func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    @Test func committedPagesReachTheDatabaseFileWithoutAnAutomaticCheckpoint() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("notice-ckpt-\(UUID().uuidString)/notice.sqlite").path
        let store = try SQLiteNoticeStore(path: path)
        try await store.migrate()
        let before = fileSize(path)
        // Far below the writer's own automatic checkpoint (backstopPages): only the
        // checkpointer can move these pages into the database file.
        for id in 1...Int64(SQLiteCheckpointer.commitsPerCheckpoint * 2) {
            _ = try await store.insert([NoticeRow(noticeId: id, recipient: "u", payload: #"{"id":"\#(id)"}"#, createdAt: id)])
        }
        #expect(fileSize(path + "-wal") < SQLiteCheckpointer.backstopPages * 4096)
        let deadline = ContinuousClock.now + .seconds(30)
        while fileSize(path) <= before, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(fileSize(path) > before, "no checkpoint copied the WAL into the database file")
        #expect(try await store.count() == SQLiteCheckpointer.commitsPerCheckpoint * 2)
        try await store.close()
        // Reopened, everything is there (the last checkpoint and close lost nothing).
        let reopened = try SQLiteNoticeStore(path: path)
        #expect(try await reopened.count() == SQLiteCheckpointer.commitsPerCheckpoint * 2)
        try await reopened.close()
    }
}
