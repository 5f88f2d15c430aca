internal import CRabbitMQ
public import CoreMetrics
import Foundation
public import Logging
import Synchronization

/// One AMQP connection to RabbitMQ, owned by a thread of its own (rabbitmq-c is not
/// thread-safe per connection, and services heartbeats only inside its own calls).
///
/// On every (re)connect it declares its ``AMQPTopology``, opens channel 1 for consuming
/// (`basic.qos` prefetch, then `basic.consume` without auto-ack) and channel 2 for
/// publishing in confirm mode. Deliveries arrive on ``deliveries`` in batches (all
/// that arrived since the consumer took the previous one); each must be ``settle(_:)``d, and is acked, with
/// `multiple`, once it and every delivery before it are settled. When the connection
/// is lost it reconnects with capped exponential backoff; unsettled deliveries of the
/// lost connection are redelivered by the broker, so their tags are ignored.
///
/// Other tasks talk to the owning thread through a command queue and an eventfd that
/// wakes its `poll`.
public final class RabbitMQConnection: Sendable {
    /// What a non-waiting ``publish(_:exchange:routingKey:completion:)`` is told.
    public typealias PublishCompletion = @Sendable (Result<Void, any Error>) -> Void

    /// Batches of consumed messages, in queue order, for one consuming task.
    public let deliveries = DeliveryBatches()

    let configuration: AMQPConfiguration
    let topology: AMQPTopology
    let logger: Logger
    let mailbox: Mailbox
    private let status = Mutex(Status())
    private let started = Atomic<Bool>(false)
    private let reconnects: Counter

    struct Status {
        var connected = false
        var lastError: String?
        var connectWaiters: [CheckedContinuation<Void, Never>] = []
        var finishWaiters: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }

    /// - Parameter metrics: counts `notice_broker_reconnects_total`.
    public init(configuration: AMQPConfiguration, topology: AMQPTopology, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory) {
        self.reconnects = Counter(label: "notice_broker_reconnects_total", dimensions: [], factory: metrics)
        self.configuration = configuration
        self.topology = topology
        self.logger = logger
        self.mailbox = Mailbox()
    }

    /// Starts the owning thread (once).
    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let worker = ConnectionWorker(connection: self, deliveries: deliveries)
        let thread = Thread { worker.run() }
        thread.name = "amqp-\(configuration.connectionName)"
        thread.start()
    }

    /// Whether the connection is up and its topology declared.
    public var isConnected: Bool { status.withLock { $0.connected } }

    /// Why the last connection attempt or connection failed, if it did.
    public var lastError: String? { status.withLock { $0.lastError } }

    /// Waits until connected (or shut down).
    public func waitUntilConnected() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = status.withLock { status in
                if status.connected || status.finished { return true }
                status.connectWaiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Marks deliveries as done with (stored or dead-lettered); they are acked in order.
    public func settle(_ tags: [DeliveryTag]) {
        guard !tags.isEmpty else { return }
        mailbox.post(.settle(tags))
    }

    /// Publishes and waits for the broker's confirm. Throws if the broker refuses it or
    /// the connection is lost before the confirm (the message may then have been routed).
    public func publish(_ message: AMQPMessage, exchange: String, routingKey: String) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            mailbox.post(.publish(message, exchange: exchange, routingKey: routingKey) { continuation.resume(with: $0) })
        }
    }

    /// Publishes without waiting: messages posted from one task go out in the order posted, and
    /// `completion` runs (on the connection's thread: keep it short) with the broker's confirm,
    /// or with the error if it refused the message or the connection was lost first.
    public func publish(_ message: AMQPMessage, exchange: String, routingKey: String, completion: @escaping PublishCompletion) {
        mailbox.post(.publish(message, exchange: exchange, routingKey: routingKey, completion))
    }

    /// Binds `queue` to `exchange` with `routingKey`, now if connected, and again after every
    /// reconnect (after the ``AMQPTopology``, before consuming) until ``unbind(queue:exchange:routingKey:)``.
    /// Returns once the broker confirmed it, or at once while disconnected.
    public func bind(queue: String, exchange: String, routingKey: String) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            mailbox.post(.bind(AMQPTopology.Binding(queue: queue, exchange: exchange, routingKey: routingKey), unbind: false, continuation))
        }
    }

    /// Removes a binding made with ``bind(queue:exchange:routingKey:)`` (and forgets it).
    public func unbind(queue: String, exchange: String, routingKey: String) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            mailbox.post(.bind(AMQPTopology.Binding(queue: queue, exchange: exchange, routingKey: routingKey), unbind: true, continuation))
        }
    }

    /// Cancels the consumer and ends ``deliveries`` once every message delivered before the
    /// cancel has been yielded; those may still be settled, and are acked, until ``shutdown()``.
    public func stopConsuming() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            mailbox.post(.stopConsuming(continuation))
        }
    }

    /// Acks what is settled, closes the connection and ends ``deliveries``.
    public func shutdown() async {
        guard started.load(ordering: .relaxed) else {
            deliveries.finish()
            return
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = status.withLock { status in
                if status.finished { return true }
                status.finishWaiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() } else { mailbox.post(.shutdown) }
        }
    }

    // MARK: Called by the worker thread

    func setConnected(_ connected: Bool, error: String? = nil) {
        let waiters: [CheckedContinuation<Void, Never>] = status.withLock { status in
            status.connected = connected
            if let error { status.lastError = error }
            guard connected else { return [] }
            defer { status.connectWaiters = [] }
            return status.connectWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func countReconnect() { reconnects.increment() }

    func finished() {
        deliveries.finish()
        let waiters = status.withLock { status in
            status.finished = true
            status.connected = false
            defer {
                status.finishWaiters = []
                status.connectWaiters = []
            }
            return status.finishWaiters + status.connectWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Commands for the owning thread, and the eventfd that wakes it.
final class Mailbox: Sendable {
    enum Command: Sendable {
        case settle([DeliveryTag])
        case publish(AMQPMessage, exchange: String, routingKey: String, RabbitMQConnection.PublishCompletion)
        case bind(AMQPTopology.Binding, unbind: Bool, CheckedContinuation<Void, any Error>)
        case stopConsuming(CheckedContinuation<Void, Never>)
        case shutdown
    }

    private let commands = Mutex<[Command]>([])
    let eventFD: Int32

    init() {
        eventFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        precondition(eventFD >= 0, "eventfd failed: \(errno)")
    }

    deinit { close(eventFD) }

    func post(_ command: Command) { post([command]) }

    /// Posts `batch` at once: the owning thread takes all of it in one go.
    func post(_ batch: [Command]) {
        commands.withLock { $0.append(contentsOf: batch) }
        var one: UInt64 = 1
        _ = write(eventFD, &one, 8)
    }

    /// Everything posted so far, oldest first.
    func take() -> [Command] {
        var counter: UInt64 = 0
        _ = read(eventFD, &counter, 8)
        return commands.withLock { commands in
            defer { commands.removeAll(keepingCapacity: true) }
            return commands
        }
    }
}
