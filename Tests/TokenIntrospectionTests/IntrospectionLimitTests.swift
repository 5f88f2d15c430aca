import Foundation
import Synchronization
import Testing

@testable import TokenIntrospection

#if canImport(Glibc)
import Glibc
import AsyncHTTPClient
#endif

/// The bounds that keep a flood of made-up tokens from growing memory or flooding the
/// endpoint (issue #15), without a network: the endpoint is a closure.
@Suite struct IntrospectionLimitTests {
    typealias Endpoint = TokenIntrospectorTests.Endpoint

    /// `stoppedClock`: the rate limit never refills, so how many checks get a turn depends on
    /// the limits alone, not on how fast a loaded machine runs the test (waits are real sleeps).
    func introspector(
        _ endpoint: Endpoint,
        stoppedClock: Bool = false,
        _ configure: (inout IntrospectionConfiguration) -> Void = { _ in }
    ) -> TokenIntrospector {
        var configuration = IntrospectionConfiguration(url: "http://x")
        configure(&configuration)
        let stopped = ContinuousClock.now
        return TokenIntrospector(configuration: configuration, nowSeconds: { 1_800_000_000 }, now: { stoppedClock ? stopped : .now }) {
            await endpoint.call($0)
        }
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
        let cache = introspector(endpoint) {
            $0.maxRequestsPerSecond = 10
            $0.maxRateWait = .zero
        }
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

    /// A reconnect storm: checks over the rate wait their turn (the wait bounded), instead of
    /// being refused at once.
    @Test func aCheckOverTheRateWaitsItsTurnUpToTheLongestWait() async {
        let endpoint = Endpoint { _ in .active(userId: "1", expiresAt: nil, scopes: []) }
        let cache = introspector(endpoint, stoppedClock: true) {
            $0.maxRequestsPerSecond = 10
            $0.maxRateWait = .seconds(1)
        }
        let checks = 30
        let active = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<checks { group.addTask { await cache.check("storm-\(index)").isActive } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        // A burst of 10 at once and 10 more waiting 0.1 … 1 s; the rest would wait longer and are refused.
        let asked = endpoint.calls.load(ordering: .relaxed)
        #expect(asked == 20)
        #expect(active == asked)
        #expect(cache.cachedTokens == asked, "refusals are not cached")
    }

    /// A check whose session goes away while it waits gives its turn back.
    @Test func aCancelledWaitGivesItsTurnBack() async {
        let endpoint = Endpoint { _ in .active(userId: "1", expiresAt: nil, scopes: []) }
        let cache = introspector(endpoint, stoppedClock: true) {
            $0.maxRequestsPerSecond = 1
            $0.maxRateWait = .milliseconds(1500)
        }
        #expect(await cache.check("first").isActive)
        // Cancelled before it asks (as when the session ends while waiting; a cancelled wait ends at once).
        let waiting = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await cache.check("second")
        }
        guard case .denied(let reason) = await waiting.value else {
            Issue.record("a cancelled check is denied")
            return
        }
        #expect(reason.contains("cancelled"))
        // Had the second kept its turn, the third's would be 2 s away: over the longest wait.
        #expect(await cache.check("third").isActive)
        #expect(endpoint.calls.load(ordering: .relaxed) == 2)
    }

    /// A check cancelled while the request for its token is out stops waiting at once, whether
    /// it made the request or joined it; the request goes on, for the cache.
    @Test func aCancelledCheckStopsWaitingForTheAnswerAndTheRequestGoesOn() async {
        let answer = HeldAnswer()
        let cache = answer.introspector()
        let asking = Task { await cache.check("slow") }
        while !answer.isAsked { await Task.yield() }
        let joining = Task { await cache.check("slow") }
        while cache.cacheHits < 1 { await Task.yield() }
        for check in [joining, asking] {
            check.cancel()
            guard case .denied(let reason) = await check.value else {
                Issue.record("a cancelled check is denied")
                return
            }
            #expect(reason.contains("cancelled"))
        }
        answer.give()
        #expect(await cache.check("slow").isActive)
        #expect(answer.calls == 1)
    }

    /// A storm of checks of one token while its request is out: those cancelled leave, the
    /// rest get the one answer.
    @Test func aStormOfChecksOfOneTokenSharesItsAnswerAndCancelledOnesLeave() async {
        let answer = HeldAnswer()
        let cache = answer.introspector()
        let checks = (0..<2000).map { _ in Task { await cache.check("storm") } }
        while cache.cacheHits < checks.count - 1 || !answer.isAsked { await Task.yield() }
        for check in checks[..<1000] { check.cancel() }
        for check in checks[..<1000] { #expect(!(await check.value.isActive)) }
        answer.give()
        for check in checks[1000...] { #expect(await check.value.isActive) }
        #expect(answer.calls == 1)
    }

    @Test func requestsInFlightAreLimited() async {
        let release = Mutex<[CheckedContinuation<Void, Never>]>([])
        let started = Atomic<Int>(0)
        let cache = TokenIntrospector(
            configuration: {
                var configuration = IntrospectionConfiguration(url: "http://x")
                configuration.maxConcurrentRequests = 4
                return configuration
            }(),
            nowSeconds: { 1_800_000_000 }
        ) { token in
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

/// Claims at their extremes, read without a network.
@Suite struct HostileAnswerTests {
    let client = IntrospectionClient(
        configuration: IntrospectionConfiguration(url: "http://127.0.0.1:1/introspect"),
        httpClient: .shared,
        now: { 1_800_000_000 }
    )

    func verdict(_ json: String) -> IntrospectionResult { client.interpret(status: 200, body: Data(json.utf8)) }

    /// A user id is 128 characters, as a notice record's is: one of 128 emoji (512 bytes) that
    /// can receive notices can also log in.
    @Test func userIdsAreCountedInCharacters() {
        let emoji = String(repeating: "😀", count: 128)
        #expect(verdict(#"{"active":true,"user_id":"\#(emoji)"}"#) == .active(userId: emoji, expiresAt: nil, scopes: []))
        #expect(!verdict(#"{"active":true,"user_id":"\#(emoji)😀"}"#).isActive)
    }

    @Test(arguments: ["9223372036854775807", "4611686018427387904", "253402300800"])
    func farFutureExpiriesAreBoundedTo9999(_ exp: String) {
        #expect(verdict(#"{"active":true,"sub":"1","exp":\#(exp)}"#) == .active(userId: "1", expiresAt: IntrospectionClient.maxExpiresAt, scopes: []))
    }

    @Test(arguments: [#""soon""#, "1e300", "-1", "1.5e9", "null", "{}"])
    func oddExpiriesDeny(_ exp: String) {
        #expect(!verdict(#"{"active":true,"sub":"1","exp":\#(exp)}"#).isActive)
    }
}

/// The 3 s deadline covers the whole answer: an endpoint that sends its head at once and then
/// drips the body, a byte every half second, denies within the deadline (it held CONNECT
/// for as long as the drip lasted before).
@Suite struct DrippingEndpointTests {
    @Test func aDrippedBodyDeniesAtTheDeadline() async throws {
        let server = try DrippingServer()
        var configuration = IntrospectionConfiguration(url: "http://127.0.0.1:\(server.port)/introspect")
        configuration.timeout = .seconds(1)
        let client = IntrospectionClient(configuration: configuration, httpClient: .shared)
        let started = ContinuousClock.now
        let result = await client.introspect("token")
        let elapsed = ContinuousClock.now - started
        #expect(!result.isActive)
        // The drip would last 60 s; the deadline is 1 s (generous room for a loaded machine).
        #expect(elapsed < .seconds(20), "\(elapsed)")
        server.stop()
    }
}

/// Answers every connection with a 200 head promising 120 bytes, then sends one byte every
/// 0.5 s: a slow body, not a slow head. On threads of its own.
final class DrippingServer: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let stopped = Atomic<Bool>(false)

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        fd = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                Thread { [self] in drip(client) }.start()
            }
        }.start()
    }

    private func drip(_ client: Int32) {
        defer { close(client) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = recv(client, &buffer, buffer.count, 0)
        let head = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 120\r\n\r\n{".utf8)
        guard send(client, head, head.count, Int32(MSG_NOSIGNAL)) == head.count else { return }
        for _ in 0..<119 where !stopped.load(ordering: .relaxed) {
            Thread.sleep(forTimeInterval: 0.5)
            guard send(client, [UInt8(ascii: " ")], 1, Int32(MSG_NOSIGNAL)) == 1 else { return }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// An endpoint whose answer (active) is held until the test gives it, or 30 s have passed: a
/// check that waits for it where it should have left gets it that late, and fails its test.
private final class HeldAnswer: Sendable {
    private let waiting = Mutex<(calls: Int, continuation: CheckedContinuation<Void, Never>?)>((0, nil))

    /// Requests the endpoint was sent.
    var calls: Int { waiting.withLock { $0.calls } }
    var isAsked: Bool { calls > 0 }

    /// An introspector in front of this endpoint.
    func introspector() -> TokenIntrospector {
        TokenIntrospector(configuration: IntrospectionConfiguration(url: "http://x"), nowSeconds: { 1_800_000_000 }) { _ in
            await self.held()
            return .active(userId: "1", expiresAt: nil, scopes: [])
        }
    }

    private func held() async {
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(30))
            self.give()
        }
        await withCheckedContinuation { continuation in
            waiting.withLock {
                $0.calls += 1
                $0.continuation = continuation
            }
        }
        watchdog.cancel()
    }

    func give() {
        waiting.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }?.resume()
    }
}
