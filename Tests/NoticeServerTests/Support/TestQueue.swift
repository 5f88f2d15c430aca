import Synchronization

/// A FIFO that test code awaits with a timeout (polling keeps it simple and cancellation-safe).
final class TestQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var finished = false
    }

    private let state = Mutex(State())

    func push(_ item: Element) { state.withLock { $0.items.append(item) } }
    func finish() { state.withLock { $0.finished = true } }

    var isFinished: Bool { state.withLock { $0.finished && $0.items.isEmpty } }

    /// The next element, or `nil` if none came within `timeout` or the queue finished empty.
    /// The default is for things that must happen: generous, since a loaded two-core machine
    /// may pause a test for seconds; it costs nothing when the element comes at once.
    func next(timeout: Duration = .seconds(30)) async -> Element? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (item, finished): (Element?, Bool) = state.withLock { state in
                if !state.items.isEmpty { return (state.items.removeFirst(), false) }
                return (nil, state.finished)
            }
            if let item { return item }
            if finished || ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
