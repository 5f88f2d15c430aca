import GRDB
import Synchronization

/// Copies the WAL back into the database file on a connection of its own, so that no
/// commit waits for it.
///
/// With SQLite's automatic checkpoint the writer that crosses 1,000 WAL pages copies them
/// and syncs the database file inside its own commit, and every notice waiting behind it
/// waits too (measured in docs/BENCHMARKS.md). A passive checkpoint runs beside the writer (it takes the checkpoint
/// lock, not the write lock), so it is run here, on a serial queue, after enough writes.
/// The writer keeps SQLite's automatic checkpoint at ``backstopPages`` as a backstop: should
/// this one fall behind, the WAL still does not grow without bound.
final class SQLiteCheckpointer: Sendable {
    /// The writer's own automatic checkpoint (16 MiB of WAL): a backstop, above what this one
    /// normally lets the WAL reach.
    static let backstopPages = 4_096
    /// A checkpoint starts after this many write transactions or rows, whichever comes first.
    static let commitsPerCheckpoint = 32
    static let rowsPerCheckpoint = 4_096

    private struct State {
        var commits = 0
        var rows = 0
        var running = false
    }

    private let queue: DatabaseQueue
    private let state = Mutex(State())

    /// Opens its connection to the database at `path`, which must already be in WAL mode.
    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(2)
        configuration.label = "notice.checkpoint"
        queue = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Counts one committed write transaction of `rows` rows; starts a checkpoint when enough
    /// has been written and none is running.
    func committed(rows: Int) {
        let start = state.withLock { state in
            state.commits += 1
            state.rows += rows
            guard !state.running,
                state.commits >= Self.commitsPerCheckpoint || state.rows >= Self.rowsPerCheckpoint
            else { return false }
            state = State(running: true)
            return true
        }
        guard start else { return }
        queue.asyncWriteWithoutTransaction { [self] db in
            // A checkpoint that cannot finish now (a reader holds an old snapshot, the disk
            // failed) leaves the frames in the WAL for the next one or for the backstop; the
            // data is committed either way.
            _ = try? db.checkpoint(.passive)
            state.withLock { $0.running = false }
        }
    }

    /// Closes the connection, after a checkpoint still running. Close it before the store's
    /// pool: SQLite's last connection to close checkpoints the whole WAL and removes it.
    func close() throws {
        try queue.close()
    }
}
