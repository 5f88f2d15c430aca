import Foundation
import Synchronization
import Testing

@testable import TokenIntrospection

/// The bounds that keep a flood of made-up tokens from growing memory or flooding the
/// endpoint (issue #15), without a network: the endpoint is a closure.
@Suite struct IntrospectionLimitTests {
    typealias Endpoint = TokenIntrospectorTests.Endpoint

    func introspector(_ endpoint: Endpoint, _ configure: (inout IntrospectionConfiguration) -> Void = { _ in }) -> TokenIntrospector {
        var configuration = IntrospectionConfiguration(url: "http://x")
        configure(&configuration)
        return TokenIntrospector(configuration: configuration, nowSeconds: { 1_800_000_000 }) { await endpoint.call($0) }
    }

    @Test func aTokenOverTheLimitIsDeniedUnasked() async {
        let endpoint = Endpoint { _ in .active(userId: "1", expiresAt: nil, scopes: []) }
        let cache = introspector(endpoint) { $0.maxTokenBytes = 1024 }
        #expect(await cache.check(String(repeating: "a", count: 1024)).isActive)
        #expect(!(await cache.check(String(repeating: "a", count: 1025)).isActive))
        #expect(!(await cache.check(String(repeating: "é", count: 1_000_000)).isActive))
        #expect(endpoint.calls.load(ordering: .relaxed) == 1)
        #expect(cache.cachedTokens == 1)
    }

    /// Keys are digests: tokens that share a long prefix are told apart, and each is its own entry.
    @Test func tokensAreKeyedByTheirWholeValue() async {
        let endpoint = Endpoint { token in .active(userId: token.hasSuffix("1") ? "one" : "two", expiresAt: nil, scopes: []) }
        let cache = introspector(endpoint)
        let prefix = String(repeating: "x", count: 4000)
        guard case .active(let first, _, _) = await cache.check(prefix + "1"), case .active(let second, _, _) = await cache.check(prefix + "2") else {
            Issue.record("both tokens are active")
            return
        }
        #expect(first == "one" && second == "two")
        #expect(cache.cachedTokens == 2)
    }

    @Test func requestsPerSecondAreLimitedAndRefusalsAreNotRemembered() async {
        let endpoint = Endpoint { _ in .denied(reason: "unknown") }
        let cache = introspector(endpoint) { $0.maxRequestsPerSecond = 10 }
        var refused = 0
        for index in 0..<100 {
            if case .denied(let reason) = await cache.check("made-up-\(index)"), reason.contains("rate") { refused += 1 }
        }
        // A burst of 10 goes out (and a few more if the loop took long enough to refill some).
        let asked = endpoint.calls.load(ordering: .relaxed)
        #expect(asked >= 10 && asked < 100)
        #expect(refused == 100 - asked)
        #expect(cache.cachedTokens == asked, "refusals are not cached")
    }

    @Test func requestsInFlightAreLimited() async {
        let release = Mutex<[CheckedContinuation<Void, Never>]>([])
        let started = Atomic<Int>(0)
        let cache = TokenIntrospector(configuration: {
            var configuration = IntrospectionConfiguration(url: "http://x")
            configuration.maxConcurrentRequests = 4
            return configuration
        }(), nowSeconds: { 1_800_000_000 }) { token in
            started.add(1, ordering: .relaxed)
            guard token.hasPrefix("slow") else { return .active(userId: "1", expiresAt: nil, scopes: []) }
            await withCheckedContinuation { continuation in release.withLock { $0.append(continuation) } }
            return .active(userId: "1", expiresAt: nil, scopes: [])
        }
        let waiting = (0..<4).map { index in Task { await cache.check("slow-\(index)") } }
        while release.withLock({ $0.count }) < 4 { await Task.yield() }
        // A fifth distinct token while four requests hang: refused at once, not queued.
        guard case .denied(let reason) = await cache.check("fifth") else {
            Issue.record("the fifth check is refused")
            return
        }
        #expect(reason.contains("in flight"))
        #expect(started.load(ordering: .relaxed) == 4)
        for continuation in release.withLock({ $0 }) { continuation.resume() }
        for task in waiting { #expect(await task.value.isActive) }
        // Room again once they are answered.
        #expect(await cache.check("sixth").isActive)
    }
}
