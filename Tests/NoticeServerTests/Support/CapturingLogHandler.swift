import Logging
import Synchronization

/// A log handler that keeps every line, message and metadata, for assertions.
final class CapturingLogHandler: LogHandler, Sendable {
    private let storage = Mutex<[String]>([])
    var lines: [String] { storage.withLock { $0 } }

    // Shared by every logger made from it: good enough to capture everything written.
    private let attached = Mutex<Logger.Metadata>([:])
    var metadata: Logger.Metadata {
        get { attached.withLock { $0 } }
        set { attached.withLock { $0 = newValue } }
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { attached.withLock { $0[key] } }
        set { attached.withLock { $0[key] = newValue } }
    }

    func log(event: LogEvent) {
        let line = "\(event.level) \(event.message) \(metadata) \(event.metadata ?? [:])"
        storage.withLock { $0.append(line) }
    }
}
