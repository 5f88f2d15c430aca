import AsyncHTTPClient
import Foundation
import MetricsTestKit
import Synchronization
import Testing

@testable import TokenIntrospection

@Suite struct InterpretTests {
    let now: Int64 = 1_800_000_000

    func client(_ style: IntrospectionConfiguration.Style = .rfc7662, claims: [String] = ["user_id", "sub", "user_name"]) -> IntrospectionClient {
        IntrospectionClient(
            configuration: IntrospectionConfiguration(url: "http://127.0.0.1:1/introspect", style: style, userIdClaims: claims),
            httpClient: .shared,
            now: { [now] in now }
        )
    }

    func verdict(_ json: String, status: UInt = 200, style: IntrospectionConfiguration.Style = .rfc7662) -> IntrospectionResult {
        client(style).interpret(status: status, body: Data(json.utf8))
    }

    @Test func activeRFC7662Token() {
        #expect(
            verdict(#"{"active":true,"sub":"alice","user_id":42,"exp":1800000060,"scope":"read notice:publish"}"#)
                == .active(userId: "42", expiresAt: 1_800_000_060, scopes: ["read", "notice:publish"])
        )
        #expect(verdict(#"{"active":true,"user_name":"bob"}"#) == .active(userId: "bob", expiresAt: nil, scopes: []))
    }

    @Test(arguments: [
        #"{"active":false,"sub":"a"}"#, #"{"sub":"a"}"#, #"{"active":"true","sub":"a"}"#, #"{"active":1,"sub":"a"}"#,
        #"{"active":true,"sub":"a","exp":1799999999}"#, #"{"active":true,"sub":"a","exp":"soon"}"#,
        #"{"active":true}"#, #"{"active":true,"sub":""}"#, #"{"active":true,"sub":"a/b"}"#, #"{"active":true,"sub":true}"#,
        "not json", "[]", "",
    ])
    func deniedRFC7662Answers(_ json: String) {
        #expect(!verdict(json).isActive)
    }

    @Test func serverErrorsDeny() {
        #expect(!verdict(#"{"active":true,"sub":"a"}"#, status: 500).isActive)
        #expect(!verdict(#"{"active":true,"sub":"a"}"#, status: 503).isActive)
        #expect(!verdict(#"{"active":true,"sub":"a"}"#, status: 302).isActive)
    }

    @Test func springCheckToken() {
        #expect(
            verdict(#"{"user_name":"carol","exp":1800000100,"scope":["read"],"client_id":"web"}"#, style: .spring)
                == .active(userId: "carol", expiresAt: 1_800_000_100, scopes: ["read"])
        )
        #expect(!verdict(#"{"error":"invalid_token","error_description":"Token was not recognised"}"#, status: 400, style: .spring).isActive)
        #expect(!verdict(#"{"error":"invalid_token"}"#, status: 401, style: .spring).isActive)
        #expect(!verdict(#"{"user_name":"carol","exp":1799999000}"#, style: .spring).isActive)
    }

    @Test func formEncoding() {
        #expect(IntrospectionClient.formEncode("a+b/c=d&e f") == "a%2Bb%2Fc%3Dd%26e%20f")
    }
}

@Suite struct TokenIntrospectorTests {
    final class Endpoint: Sendable {
        let calls = Atomic<Int>(0)
        let answer: @Sendable (String) -> IntrospectionResult
        let delay: Duration
        init(delay: Duration = .zero, answer: @escaping @Sendable (String) -> IntrospectionResult) {
            self.delay = delay
            self.answer = answer
        }
        func call(_ token: String) async -> IntrospectionResult {
            calls.add(1, ordering: .relaxed)
            if delay > .zero { try? await Task.sleep(for: delay) }
            return answer(token)
        }
    }

    func introspector(
        _ endpoint: Endpoint,
        ttl: Duration = .seconds(60),
        negative: Duration = .seconds(5),
        max: Int = 100_000,
        now: Int64 = 1_800_000_000
    ) -> TokenIntrospector {
        TokenIntrospector(
            configuration: IntrospectionConfiguration(url: "http://x", cacheTTL: ttl, negativeCacheTTL: negative, maxCacheEntries: max),
            nowSeconds: { now }
        ) { await endpoint.call($0) }
    }

    @Test func repeatedChecksUseTheCache() async {
        let endpoint = Endpoint { _ in .active(userId: "1", expiresAt: nil, scopes: []) }
        let cache = introspector(endpoint)
        for _ in 0..<1000 { #expect(await cache.check("t").isActive) }
        #expect(endpoint.calls.load(ordering: .relaxed) == 1)
        #expect(cache.cacheHits == 999)
    }

    @Test func concurrentChecksShareOneRequest() async {
        let endpoint = Endpoint(delay: .milliseconds(200)) { _ in .active(userId: "1", expiresAt: nil, scopes: []) }
        let cache = introspector(endpoint)
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<100 { group.addTask { await cache.check("new").isActive } }
            for await active in group { #expect(active) }
        }
        #expect(endpoint.calls.load(ordering: .relaxed) == 1)
    }

    /// Checks `token` until the endpoint is asked a second time (the cached answer expired);
    /// how long after `started` that was.
    func timeUntilAskedAgain(
        _ cache: TokenIntrospector,
        _ endpoint: Endpoint,
        token: String,
        since started: ContinuousClock.Instant
    ) async throws -> Duration {
        let deadline = ContinuousClock.now + .seconds(30)
        while endpoint.calls.load(ordering: .relaxed) < 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            _ = await cache.check(token)
        }
        return ContinuousClock.now - started
    }

    @Test func positiveAnswersLastUntilExpAtMost() async throws {
        // `exp` is 3 s after the introspector's "now"; the TTL alone would keep it an hour.
        let endpoint = Endpoint { _ in .active(userId: "1", expiresAt: 1_800_000_003, scopes: []) }
        let cache = introspector(endpoint, ttl: .seconds(3600))
        // Before the first answer: its validity cannot end sooner than 3 s after this.
        let started = ContinuousClock.now
        _ = await cache.check("t")
        _ = await cache.check("t")
        // A window wide enough that a busy machine cannot stretch two back-to-back checks past it.
        #expect(endpoint.calls.load(ordering: .relaxed) == 1)
        let expiredAfter = try await timeUntilAskedAgain(cache, endpoint, token: "t", since: started)
        #expect(endpoint.calls.load(ordering: .relaxed) == 2, "asked again once exp passed, not after the TTL")
        #expect(expiredAfter >= .seconds(3), "not before exp")
    }

    @Test func negativeAnswersAreCachedBriefly() async throws {
        let endpoint = Endpoint { _ in .denied(reason: "no") }
        // A window wide enough that a busy machine cannot stretch two back-to-back checks past it.
        let cache = introspector(endpoint, negative: .seconds(3))
        let started = ContinuousClock.now
        _ = await cache.check("bad")
        _ = await cache.check("bad")
        #expect(endpoint.calls.load(ordering: .relaxed) == 1)
        let expiredAfter = try await timeUntilAskedAgain(cache, endpoint, token: "bad", since: started)
        #expect(endpoint.calls.load(ordering: .relaxed) == 2, "asked again once the negative TTL passed")
        #expect(expiredAfter >= .seconds(3), "not before the negative TTL")
    }

    @Test func metricsCountRequestsByOutcomeAndCacheHits() async throws {
        let metrics = TestMetrics()
        let endpoint = Endpoint { $0 == "good" ? .active(userId: "1", expiresAt: nil, scopes: []) : .denied(reason: "no") }
        let cache = TokenIntrospector(configuration: IntrospectionConfiguration(url: "http://x"), metrics: metrics) { await endpoint.call($0) }
        for token in ["good", "good", "bad", "good", "bad"] { _ = await cache.check(token) }
        #expect(try metrics.expectCounter("notice_introspection_requests_total", [("outcome", "active")]).totalValue == 1)
        #expect(try metrics.expectCounter("notice_introspection_requests_total", [("outcome", "denied")]).totalValue == 1)
        #expect(try metrics.expectCounter("notice_introspection_cache_hits_total").totalValue == 3)
        #expect(try metrics.expectTimer("notice_introspection_duration_seconds").values.count == 2)
    }

    @Test func theCacheIsBounded() async {
        let endpoint = Endpoint { _ in .active(userId: "1", expiresAt: nil, scopes: []) }
        let cache = introspector(endpoint, max: 100)
        for index in 0..<1000 { _ = await cache.check("token-\(index)") }
        #expect(cache.cachedTokens <= 100)
    }
}
