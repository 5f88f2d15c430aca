public import CoreMetrics
import Crypto
public import Foundation
import Synchronization

/// Token checks with a cache in front of the endpoint (SPEC §5): positive answers are kept
/// until `min(exp, cacheTTL)`, negative ones for `negativeCacheTTL`, concurrent checks of
/// one token share one request, and the cache holds at most `maxCacheEntries` tokens.
///
/// Bounded against a flood of made-up tokens: the cache is keyed by each token's SHA-256 (32
/// bytes, whatever the token's length), a token over `maxTokenBytes` is denied unasked, and
/// requests to the endpoint are limited in number in flight and per second (a check over the
/// rate waits its turn up to `maxRateWait`; checks over either limit are denied and not
/// remembered). Tokens are never logged and never put in metric labels.
public final class TokenIntrospector: Sendable {
    private enum Entry {
        /// A request is out; the checks waiting for its answer, by ``State/nextWaiter``.
        case pending(waiters: [Int: CheckedContinuation<IntrospectionResult?, Never>])
        case resolved(IntrospectionResult, validUntil: ContinuousClock.Instant)
    }

    public let configuration: IntrospectionConfiguration
    private let introspect: @Sendable (String) async -> IntrospectionResult
    private struct State {
        var entries: [SHA256.Digest: Entry] = [:]
        var inFlight = 0
        /// Requests the rate limit allows now (a token bucket refilled per second); below zero,
        /// turns promised to checks that wait.
        var allowance: Double
        var refilledAt: ContinuousClock.Instant
        var nextWaiter = 0

        /// Changes the waiters of the request out for `key` in place (taken out of the entry
        /// first, so that a storm of checks of one token does not copy them for each); `nil`
        /// when no request is out.
        mutating func withWaiters<Result>(
            of key: SHA256.Digest,
            _ change: (inout [Int: CheckedContinuation<IntrospectionResult?, Never>]) -> Result
        ) -> Result? {
            guard case .pending(var waiters)? = entries[key] else { return nil }
            entries[key] = nil
            defer { entries[key] = .pending(waiters: waiters) }
            return change(&waiters)
        }
    }

    private let state: Mutex<State>
    private let requestCount = Atomic<Int>(0)
    private let hitCount = Atomic<Int>(0)
    private let nowSeconds: @Sendable () -> Int64
    /// The monotonic clock of the rate limit and the cache.
    private let now: @Sendable () -> ContinuousClock.Instant
    private let requestsActive: Counter
    private let requestsDenied: Counter
    private let hits: Counter
    private let duration: CoreMetrics.Timer

    /// - Parameters:
    ///   - introspect: the uncached check, normally ``IntrospectionClient/introspect(_:)``.
    ///   - nowSeconds: Unix time in seconds (for the `exp` bound of cached answers).
    ///   - now: the monotonic clock of the rate limit and the cache (tests stop it).
    ///   - metrics: where `notice_introspection_requests_total{outcome}`,
    ///     `notice_introspection_cache_hits_total` and `notice_introspection_duration_seconds` go.
    public init(
        configuration: IntrospectionConfiguration,
        nowSeconds: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
        metrics: any MetricsFactory = MetricsSystem.factory,
        introspect: @escaping @Sendable (String) async -> IntrospectionResult
    ) {
        self.configuration = configuration
        self.state = Mutex(State(allowance: Double(configuration.maxRequestsPerSecond), refilledAt: now()))
        self.introspect = introspect
        self.nowSeconds = nowSeconds
        self.now = now
        requestsActive = Counter(label: "notice_introspection_requests_total", dimensions: [("outcome", "active")], factory: metrics)
        requestsDenied = Counter(label: "notice_introspection_requests_total", dimensions: [("outcome", "denied")], factory: metrics)
        hits = Counter(label: "notice_introspection_cache_hits_total", factory: metrics)
        duration = CoreMetrics.Timer(label: "notice_introspection_duration_seconds", dimensions: [], factory: metrics)
    }

    /// Requests sent to the endpoint so far.
    public var requests: Int { requestCount.load(ordering: .relaxed) }
    /// Checks answered from the cache (including ones that joined a request in flight).
    public var cacheHits: Int { hitCount.load(ordering: .relaxed) }
    /// Tokens currently remembered.
    public var cachedTokens: Int { state.withLock { $0.entries.count } }

    /// The verdict on `token`, from the cache or one shared request.
    public func check(_ token: String) async -> IntrospectionResult {
        guard token.utf8.count <= configuration.maxTokenBytes else {
            requestsDenied.increment()
            return .denied(reason: "token longer than \(configuration.maxTokenBytes) bytes")
        }
        let key = SHA256.hash(data: Array(token.utf8))
        var hasTurn = false
        while true {
            switch step(token, key: key, hasTurn: hasTurn) {
            case .refused(let reason):
                requestsDenied.increment()
                return .denied(reason: reason)
            case .answer(let result):
                hitCount.add(1, ordering: .relaxed)
                hits.increment()
                return result
            case .wait(let joined):
                if joined {
                    hitCount.add(1, ordering: .relaxed)
                    hits.increment()
                }
                // `nil`: the answer came and was evicted before this check could wait for it.
                if let result = await answer(key) { return result }
            case .turnIn(let delay):
                // The turn is promised: after the wait, the cache is looked at again (another
                // check may have asked for this token meanwhile), then the request goes out.
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    // The session is gone: its turn goes to the next check.
                    state.withLock { $0.allowance += 1 }
                    requestsDenied.increment()
                    return .denied(reason: "cancelled while waiting for an introspection turn")
                }
                hasTurn = true
            }
        }
    }

    /// ``IntrospectionConfiguration/maxRateWait`` is bounded by this, whatever it is set to.
    static var longestRateWait: Double { 3600 }

    private enum Step {
        case answer(IntrospectionResult)
        /// A request for the token is out (`joined`: one another check made).
        case wait(joined: Bool)
        /// The rate allows a request after this wait.
        case turnIn(Duration)
        case refused(String)
    }

    /// What to do for `token` now; `hasTurn`: a turn under the rate was promised and waited for.
    private func step(_ token: String, key: SHA256.Digest, hasTurn: Bool) -> Step {
        let now = self.now()
        return state.withLock { state in
            switch state.entries[key] {
            case .resolved(let result, let validUntil)? where validUntil > now:
                return .answer(result)
            case .pending?:
                return .wait(joined: true)
            default:
                guard state.inFlight < configuration.maxConcurrentRequests else {
                    return .refused("too many introspection requests in flight")
                }
                if !hasTurn {
                    guard configuration.maxRequestsPerSecond > 0 else { return .refused("introspection request rate exceeded") }
                    let rate = Double(configuration.maxRequestsPerSecond)
                    state.allowance = min(rate, state.allowance + rate * Self.seconds(now - state.refilledAt))
                    state.refilledAt = now
                    if state.allowance < 1 {
                        // The turn comes when the bucket is back at one, after the turns already promised.
                        let wait = (1 - state.allowance) / rate
                        guard wait <= min(Self.seconds(configuration.maxRateWait), Self.longestRateWait) else {
                            return .refused("introspection request rate exceeded")
                        }
                        state.allowance -= 1
                        return .turnIn(.nanoseconds(Int64(wait * 1e9)))
                    }
                    state.allowance -= 1
                }
                if state.entries.count >= configuration.maxCacheEntries {
                    Self.evict(&state.entries, now: now, keep: configuration.maxCacheEntries * 9 / 10)
                }
                state.inFlight += 1
                // Not a child of this check: the answer is for every check of the token and the
                // cache, so the request goes on when this check is cancelled.
                Task { await self.fetch(token, key: key) }
                state.entries[key] = .pending(waiters: [:])
                return .wait(joined: false)
            }
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func fetch(_ token: String, key: SHA256.Digest) async -> IntrospectionResult {
        requestCount.add(1, ordering: .relaxed)
        let started = ContinuousClock.now
        let result = await introspect(token)
        let elapsed = ContinuousClock.now - started
        duration.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        let ttl: Duration
        switch result {
        case .active(_, let expiresAt, _):
            requestsActive.increment()
            let untilExp = expiresAt.map { Duration.seconds(max(0, $0 - nowSeconds())) } ?? configuration.cacheTTL
            ttl = min(configuration.cacheTTL, untilExp)
        case .denied:
            requestsDenied.increment()
            ttl = configuration.negativeCacheTTL
        }
        let validUntil = now() + ttl
        let waiters = state.withLock { state -> [Int: CheckedContinuation<IntrospectionResult?, Never>] in
            state.inFlight -= 1
            defer { state.entries[key] = .resolved(result, validUntil: validUntil) }
            guard case .pending(let waiters)? = state.entries[key] else { return [:] }
            return waiters
        }
        for waiter in waiters.values { waiter.resume(returning: result) }
        return result
    }

    /// Waits for the answer to the request out for `key`; a cancelled check (its session has
    /// gone) stops waiting at once and is denied, and the request goes on for the others.
    private func answer(_ key: SHA256.Digest) async -> IntrospectionResult? {
        let waiter = state.withLock { state in
            defer { state.nextWaiter &+= 1 }
            return state.nextWaiter
        }
        let cancelled = IntrospectionResult.denied(reason: "cancelled while waiting for the introspection answer")
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<IntrospectionResult?, Never>) in
                // Decided under the lock that the cancellation handler takes too: either the
                // handler finds this waiter, or this sees the task cancelled.
                let now: IntrospectionResult?? = state.withLock { state in
                    if Task.isCancelled { return .some(cancelled) }
                    if state.withWaiters(of: key, { $0[waiter] = continuation }) != nil { return nil }
                    guard case .resolved(let result, _)? = state.entries[key] else { return .some(nil) }
                    return .some(result)
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let continuation = state.withLock { state in state.withWaiters(of: key) { $0.removeValue(forKey: waiter) } ?? nil }
            continuation?.resume(returning: cancelled)
        }
    }

    /// Drops expired answers, then (if still needed) any answers, down to `keep` entries.
    private static func evict(_ entries: inout [SHA256.Digest: Entry], now: ContinuousClock.Instant, keep: Int) {
        entries = entries.filter {
            if case .resolved(_, let validUntil) = $0.value { return validUntil > now }
            return true
        }
        guard entries.count > keep else { return }
        for key in entries.keys.prefix(entries.count - keep) {
            if case .resolved = entries[key] { entries[key] = nil }
        }
    }
}
