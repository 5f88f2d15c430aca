public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1

/// Asks the introspection endpoint about one token (no caching here). Fails closed: a
/// timeout, a refused connection, a 5xx, a body that is not a JSON object, a missing
/// `active`, an `exp` in the past or no user id claim all deny.
public struct IntrospectionClient: Sendable {
    public let configuration: IntrospectionConfiguration
    private let httpClient: HTTPClient
    private let now: @Sendable () -> Int64

    /// - Parameter now: Unix time in seconds (a parameter for tests).
    public init(
        configuration: IntrospectionConfiguration,
        httpClient: HTTPClient,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    ) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.now = now
    }

    /// The latest `exp` an answer is taken to have (9999-12-31T23:59:59Z): a later one, up to
    /// `Int64.max`, is read as this, so that no caller's arithmetic on it can overflow.
    public static let maxExpiresAt: Int64 = 253_402_300_799

    public func introspect(_ token: String) async -> IntrospectionResult {
        var request = HTTPClientRequest(url: configuration.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        if let id = configuration.clientId {
            let credentials = Data("\(Self.formEncode(id)):\(Self.formEncode(configuration.clientSecret ?? ""))".utf8).base64EncodedString()
            request.headers.add(name: "Authorization", value: "Basic \(credentials)")
        }
        var form = "token=\(Self.formEncode(token))"
        if configuration.style == .rfc7662 { form += "&token_type_hint=access_token" }
        request.body = .bytes(ByteBuffer(string: form))

        let status: HTTPResponseStatus
        let body: ByteBuffer
        let timeout = TimeAmount.nanoseconds(
            Int64(configuration.timeout.components.seconds) * 1_000_000_000 + configuration.timeout.components.attoseconds / 1_000_000_000
        )
        let ready = request
        let httpClient = httpClient
        do {
            // The deadline covers the body too: an endpoint that drips its answer is as slow as
            // one that never answers.
            (status, body) = try await withThrowingTaskGroup(of: (HTTPResponseStatus, ByteBuffer)?.self) { group in
                group.addTask {
                    let response = try await httpClient.execute(ready, timeout: timeout)
                    return (response.status, try await response.body.collect(upTo: 1 << 20))
                }
                group.addTask {
                    try await Task.sleep(for: self.configuration.timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let answer = try await group.next(), let answer else { throw IntrospectionTimeout() }
                return answer
            }
        } catch {
            return .denied(reason: "introspection request failed: \(type(of: error))")
        }
        return interpret(status: status.code, body: Data(body.readableBytesView))
    }

    /// The verdict on an answer (separate from the transport, for tests).
    public func interpret(status: UInt, body: Data) -> IntrospectionResult {
        switch (configuration.style, status) {
        case (_, 500...):
            return .denied(reason: "introspection endpoint answered \(status)")
        case (.spring, 400), (.spring, 401):
            return .denied(reason: "token not accepted (\(status))")
        case (_, 200):
            break
        default:
            return .denied(reason: "introspection endpoint answered \(status)")
        }
        guard let claims = try? JSONDecoder().decode([String: Claim].self, from: body) else {
            return .denied(reason: "introspection answer is not a JSON object")
        }
        if configuration.style == .rfc7662 {
            guard case .bool(let active)? = claims["active"] else { return .denied(reason: "introspection answer has no boolean 'active'") }
            guard active else { return .denied(reason: "token inactive") }
        } else if case .bool(false)? = claims["active"] {
            return .denied(reason: "token inactive")
        }
        var expiresAt: Int64?
        if let exp = claims["exp"] {
            guard let seconds = exp.integer else { return .denied(reason: "introspection answer has a malformed 'exp'") }
            guard seconds > now() else { return .denied(reason: "token expired") }
            expiresAt = min(seconds, Self.maxExpiresAt)
        }
        guard let userId = configuration.userIdClaims.lazy.compactMap({ claims[$0]?.userId }).first else {
            return .denied(reason: "no user id claim among \(configuration.userIdClaims.joined(separator: ","))")
        }
        var scopes = Set<String>()
        switch claims["scope"] {
        case .string(let scope)?: scopes = Set(scope.split(separator: " ").map(String.init))
        case .strings(let list)?: scopes = Set(list)
        default: break
        }
        return .active(userId: userId, expiresAt: expiresAt, scopes: scopes)
    }

    /// A claim value, told apart the way JSON does (booleans are not numbers).
    enum Claim: Decodable {
        case bool(Bool)
        case integer(Int64)
        case number(Double)
        case string(String)
        case strings([String])
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Int64.self) {
                self = .integer(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([String].self) {
                self = .strings(value)
            } else {
                self = .other
            }
        }

        var integer: Int64? {
            switch self {
            case .integer(let value): value
            case .number(let value) where value.rounded() == value && abs(value) < 1e15: Int64(value)
            case .string(let text): Int64(text)
            default: nil
            }
        }

        /// A usable user id: a non-empty string without `/`, or an integer.
        var userId: String? {
            switch self {
            // 128 characters (Unicode scalars), as a notice record's user id is counted.
            case .string(let text) where !text.isEmpty && !text.contains("/") && text.unicodeScalars.count <= 128: text
            case .integer(let value): String(value)
            default: nil
            }
        }
    }

    private struct IntrospectionTimeout: Error {}

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
