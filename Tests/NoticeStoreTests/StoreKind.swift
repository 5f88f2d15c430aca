import Foundation
import Testing
import NoticeCore

@testable import NoticeStore

/// The stores the contract suite runs against. Each test gets an empty store of its own.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite

    var testDescription: String { rawValue }

    func makeStore() async throws -> any NoticeStore {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("notice-store-\(UUID().uuidString)/notice.sqlite").path
            let store = try SQLiteNoticeStore(path: path)
            try await store.migrate()
            return store
        }
    }
}
