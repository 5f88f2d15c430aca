import Synchronization

/// What holds a mailbox and runs its bursts. The mailbox is stored inline in its owner, and a
/// burst is started with the owner handed in, so the mailbox keeps no closure of its own.
protocol BurstMailboxOwner: AnyObject, Sendable {
    /// One burst: ``BurstMailbox/beginBurst()``, then ``BurstMailbox/next(orPark:)`` until it
    /// returns `nil`.
    func runBurst() async
}

/// Runs one connection's events in order, one at a time, on a task that exists only while
/// events wait (a burst); between bursts the state is parked here, so an idle connection holds
/// no task.
///
/// The state has one owner at a time: the running burst, or a caller that took it with
/// ``takeIfIdle(where:)`` to handle something on its own thread until ``giveBack(_:appending:in:)``.
/// Events posted meanwhile wait, and start a burst once the state is back.
struct BurstMailbox<State: Sendable, Event: Sendable>: ~Copyable, Sendable {
    /// Internal, not private: the owner stores this inline, and the compiler (6.3) cannot lay out
    /// a private type from another file.
    struct Storage {
        var events: [Event] = []
        /// Events before this index have been handed out.
        var head = 0
        /// The parked state: `nil` before ``open(with:in:)``, while a burst runs, or taken.
        var state: State?
        var burst: Task<Void, Never>?
        var finished = false

        var hasEvents: Bool { head < events.count }

        mutating func startBurstIfNeeded(in owner: some BurstMailboxOwner) {
            guard burst == nil, state != nil, !finished, hasEvents else { return }
            burst = Task.detached { await owner.runBurst() }
        }
    }

    /// Past this many handled events in one burst, they are dropped from the front of the
    /// queue instead of being kept until the burst ends.
    static var compactionThreshold: Int { 1024 }

    private let storage = Mutex(Storage())

    init() {}

    /// Parks the first state; from now on a burst of `owner` starts whenever events wait and the
    /// state is parked. Events posted before this wait for it. Call once.
    func open(with state: State, in owner: some BurstMailboxOwner) {
        storage.withLock { storage in
            guard !storage.finished else { return }
            storage.state = state
            storage.startBurstIfNeeded(in: owner)
        }
    }

    /// Queues an event, starting a burst of `owner` if none runs; dropped once the mailbox is finished.
    func post(_ event: Event, in owner: some BurstMailboxOwner) {
        storage.withLock { storage in
            guard !storage.finished else { return }
            storage.events.append(event)
            storage.startBurstIfNeeded(in: owner)
        }
    }

    /// For a burst: takes the parked state (`nil` if there is none to take).
    func beginBurst() -> State? {
        storage.withLock { storage in
            defer { storage.state = nil }
            return storage.state
        }
    }

    /// For a burst: the next event; or, when none is left, parks `state` and ends the burst.
    func next(orPark state: @autoclosure () -> State) -> Event? {
        storage.withLock { storage in
            guard storage.hasEvents else {
                // Done for now: the state waits here and the queue's memory is freed.
                storage.events = []
                storage.head = 0
                storage.state = storage.finished ? nil : state()
                storage.burst = nil
                return nil
            }
            let event = storage.events[storage.head]
            storage.head += 1
            if storage.head >= Self.compactionThreshold, storage.head * 2 >= storage.events.count {
                storage.events.removeFirst(storage.head)
                storage.head = 0
            }
            return event
        }
    }

    /// Takes the parked state when no burst runs, no event waits and `ready` holds for it:
    /// the caller handles something without a task, then calls ``giveBack(_:appending:in:)``.
    func takeIfIdle(where ready: (State) -> Bool) -> State? {
        storage.withLock { storage in
            guard !storage.finished, storage.burst == nil, !storage.hasEvents, let state = storage.state, ready(state) else {
                return nil
            }
            storage.state = nil
            return state
        }
    }

    /// Parks a state taken by ``takeIfIdle(where:)``, queues `event` if given, and starts a
    /// burst of `owner` for whatever was posted meanwhile.
    func giveBack(_ state: State, appending event: Event? = nil, in owner: some BurstMailboxOwner) {
        storage.withLock { storage in
            guard !storage.finished else { return }
            storage.state = state
            if let event { storage.events.append(event) }
            storage.startBurstIfNeeded(in: owner)
        }
    }

    /// Cancels the running burst, if any.
    func cancelBurst() {
        storage.withLock { $0.burst }?.cancel()
    }

    /// Ends the mailbox, from its last burst: waiting events are dropped, later ones too, and
    /// no burst starts again.
    func finish() {
        storage.withLock { storage in
            storage.finished = true
            storage.events = []
            storage.head = 0
            storage.state = nil
            storage.burst = nil
        }
    }

    var isFinished: Bool { storage.withLock { $0.finished } }

    /// Whether a burst is running (for tests and diagnostics).
    var isRunning: Bool { storage.withLock { $0.burst != nil } }

    /// Events queued and not yet handed out.
    var waitingCount: Int { storage.withLock { $0.events.count - $0.head } }

    /// Events kept in the queue, handed out or not (for tests of the compaction).
    var storedCount: Int { storage.withLock { $0.events.count } }
}
