public import Foundation
public import CoreMetrics
import Synchronization

/// Token checks with a cache in front of the endpoint (SPEC §5): positive answers are kept
/// until `min(exp, cacheTTL)`, negative ones for `negativeCacheTTL`, concurrent checks of
/// one token share one request, and the cache holds at most `maxCacheEntries` tokens.
///
/// Tokens are cache keys only: they are never logged and never put in metric labels.
public final class TokenIntrospector: Sendable {
    private enum Entry {
        case pending(Task<IntrospectionResult, Never>)
        case resolved(IntrospectionResult, validUntil: ContinuousClock.Instant)
    }

    public let configuration: IntrospectionConfiguration
    private let introspect: @Sendable (String) async -> IntrospectionResult
    private let entries = Mutex<[String: Entry]>([:])
    private let requestCount = Atomic<Int>(0)
    private let hitCount = Atomic<Int>(0)
    private let nowSeconds: @Sendable () -> Int64
    private let requestsActive: Counter
    private let requestsDenied: Counter
    private let hits: Counter
    private let duration: CoreMetrics.Timer

    /// - Parameters:
    ///   - introspect: the uncached check, normally ``IntrospectionClient/introspect(_:)``.
    ///   - nowSeconds: Unix time in seconds (for the `exp` bound of cached answers).
    ///   - metrics: where `notice_introspection_requests_total{outcome}`,
    ///     `notice_introspection_cache_hits_total` and `notice_introspection_duration_seconds` go.
    public init(
        configuration: IntrospectionConfiguration,
        nowSeconds: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
        metrics: any MetricsFactory = MetricsSystem.factory,
        introspect: @escaping @Sendable (String) async -> IntrospectionResult
    ) {
        self.configuration = configuration
        self.introspect = introspect
        self.nowSeconds = nowSeconds
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
    public var cachedTokens: Int { entries.withLock { $0.count } }

    /// The verdict on `token`, from the cache or one shared request.
    public func check(_ token: String) async -> IntrospectionResult {
        enum Step {
            case answer(IntrospectionResult)
            case wait(Task<IntrospectionResult, Never>, joined: Bool)
        }
        let now = ContinuousClock.now
        let step: Step = entries.withLock { entries in
            switch entries[token] {
            case .resolved(let result, let validUntil)? where validUntil > now:
                return .answer(result)
            case .pending(let task)?:
                return .wait(task, joined: true)
            default:
                if entries.count >= configuration.maxCacheEntries { Self.evict(&entries, now: now, keep: configuration.maxCacheEntries * 9 / 10) }
                let task = Task { await self.fetch(token) }
                entries[token] = .pending(task)
                return .wait(task, joined: false)
            }
        }
        switch step {
        case .answer(let result):
            hitCount.add(1, ordering: .relaxed)
            hits.increment()
            return result
        case .wait(let task, let joined):
            if joined {
                hitCount.add(1, ordering: .relaxed)
                hits.increment()
            }
            return await task.value
        }
    }

    private func fetch(_ token: String) async -> IntrospectionResult {
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
        let validUntil = ContinuousClock.now + ttl
        entries.withLock { $0[token] = .resolved(result, validUntil: validUntil) }
        return result
    }

    /// Drops expired answers, then (if still needed) any answers, down to `keep` entries.
    private static func evict(_ entries: inout [String: Entry], now: ContinuousClock.Instant, keep: Int) {
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
