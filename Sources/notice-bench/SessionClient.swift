import NIOCore
import NIOPosix
import NIOWebSocket
import Synchronization

/// Many STOMP-over-WebSocket sessions on one small `MultiThreadedEventLoopGroup`: no task or
/// thread per session, only a channel with three handlers. Session `i` lives on loop
/// `i % threads` and binds source address `127.0.0.(2 + i % sourceAddresses)`, so more than
/// one address's ~28k ephemeral ports are available.
final class SessionClient: Sendable {
    let plan: SessionPlan
    let group: MultiThreadedEventLoopGroup
    let recorders: [LoopRecorder]
    let counters = SessionCounters()

    init(plan: SessionPlan, threads: Int) {
        self.plan = plan
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        self.recorders = group.makeIterator().map { LoopRecorder(loop: $0) }
    }

    /// Starts one session; its outcome shows up in ``counters`` and its loop's recorder.
    func open(user: Int, index: Int) {
        let recorder = recorders[index % recorders.count]
        let plan = self.plan
        let counters = self.counters
        counters.started.add(1, ordering: .relaxed)
        let openedAt = monotonicNanos()
        let source = try! SocketAddress(ipAddress: "127.0.0.\(2 + index % plan.sourceAddresses)", port: 0)
        let connect = ClientBootstrap(group: recorder.loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .bind(to: source)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let session = StompSessionHandler(plan: plan, user: user, recorder: recorder, counters: counters, openedAt: openedAt)
                    try channel.pipeline.syncOperations.addHandler(WebSocketHandshakeHandler(plan: plan, session: session))
                }
            }
            .connect(host: plan.host, port: plan.port)
        connect.whenFailure { error in
            recorder.fail("user \(user): connect: \(error)")
            counters.failed.add(1, ordering: .relaxed)
        }
    }

    /// Opens sessions for `users` with at most `inFlight` not yet ready or failed, and at most
    /// `perSecond` started per second (0: no pace; the service checks each CONNECT's token, and
    /// refuses introspections beyond its rate limit); returns once all have settled or
    /// `timeout` has passed.
    func openAll(users: some Sequence<Int>, inFlight: Int, perSecond: Int = 0, timeout: Duration) async throws {
        let started = ContinuousClock.now
        let deadline = started + timeout
        // Sessions opened by an earlier call count too (connect mode's warm-up).
        var index = counters.started.load(ordering: .relaxed)
        let first = index
        for user in users {
            while index - counters.settled >= inFlight {
                guard ContinuousClock.now < deadline else { return }
                try await Task.sleep(for: .milliseconds(1))
            }
            if perSecond > 0 {
                let due = started + .seconds(Double(index - first) / Double(perSecond))
                if due > ContinuousClock.now { try await Task.sleep(until: due) }
            }
            open(user: user, index: index)
            index += 1
        }
        while counters.settled < index, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Runs `body` on every loop with its recorder and returns the results.
    func collect<T: Sendable>(_ body: @escaping @Sendable (LoopRecorder) -> T) async throws -> [T] {
        var results: [T] = []
        for recorder in recorders {
            results.append(try await recorder.loop.submit { body(recorder) }.get())
        }
        return results
    }

    /// The first failure any loop recorded.
    func firstError() async throws -> String? {
        try await collect { $0.firstError }.compactMap { $0 }.first
    }

    /// Closes every open session and waits (bounded) until the server side saw them go.
    func closeAll(timeout: Duration = .seconds(30)) async throws {
        _ = try await collect { recorder in
            for channel in recorder.channels.values { channel.close(promise: nil) }
            return 0
        }
        let deadline = ContinuousClock.now + timeout
        while try await collect({ $0.channels.count }).reduce(0, +) > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func shutdown() async {
        try? await group.shutdownGracefully()
    }
}
