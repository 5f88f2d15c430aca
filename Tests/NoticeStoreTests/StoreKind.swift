import Foundation
import NoticeCore
import NoticeTesting
import Testing

@testable import NoticeStore

/// The stores the contract suite runs against. Each test gets an empty store of its own:
/// a new SQLite file, or a new PostgreSQL database (dropped when the store is closed).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    /// Needs `NOTICE_TEST_POSTGRES_URL` (scripts/test sets it); fails without it.
    case postgres

    var testDescription: String { rawValue }

    func makeStore() async throws -> any NoticeStore {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("notice-store-\(UUID().uuidString)/notice.sqlite").path
            let store = try SQLiteNoticeStore(path: path)
            try await store.migrate()
            return store
        case .postgres:
            let database = try await PostgresTestDatabase.create()
            let store = RunningPostgresStore(configuration: database.configuration, onClose: database.drop)
            do {
                try await store.migrate()
            } catch {
                try? await store.close()
                throw error
            }
            return store
        }
    }
}
