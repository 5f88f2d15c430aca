import Foundation
import NoticeCore

extension PostgresNoticeStore {
    /// Where the PostgreSQL store connects and how long it waits (SPEC §6).
    ///
    /// Its descriptions never show the password.
    public struct Configuration: Sendable, Hashable {
        /// How the connection is encrypted, as libpq's `sslmode`.
        public enum TLSMode: String, Sendable, Hashable, CaseIterable {
            /// Plain TCP.
            case disable
            /// TLS, without checking the server's certificate (libpq's `require`).
            case require
            /// TLS, with the certificate checked against the system's roots and the host name.
            case verifyFull = "verify-full"
        }

        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        public var tls: TLSMode
        /// Longest wait for a TCP connection (and its TLS and login) to the server.
        public var connectTimeout: Duration
        /// Longest time one store operation may take, waiting for a connection included. The
        /// server enforces it too, as `statement_timeout`.
        public var queryTimeout: Duration
        /// Longest time `migrate()` waits, another node's migration under the lock included.
        public var migrationTimeout: Duration
        /// Most connections the pool opens.
        public var maximumConnections: Int

        public init(
            host: String,
            port: Int = 5432,
            username: String,
            password: String?,
            database: String,
            tls: TLSMode = .disable,
            connectTimeout: Duration = .seconds(3),
            queryTimeout: Duration = .seconds(5),
            migrationTimeout: Duration = .seconds(60),
            maximumConnections: Int = 8
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.tls = tls
            self.connectTimeout = connectTimeout
            self.queryTimeout = queryTimeout
            self.migrationTimeout = migrationTimeout
            self.maximumConnections = maximumConnections
        }

        /// Parses `postgres://user:pass@host[:port]/db[?sslmode=disable|require|verify-full]`
        /// (also `postgresql://`); user, password and database may be percent-encoded, and
        /// must be when they hold anything but letters, digits and `-._~!$&'()*+,;=`.
        /// The error never repeats the URL or the password.
        public init(url text: String) throws(InvalidURL) {
            let rest: Substring
            if text.hasPrefix("postgres://") {
                rest = text.dropFirst("postgres://".count)
            } else if text.hasPrefix("postgresql://") {
                rest = text.dropFirst("postgresql://".count)
            } else {
                throw InvalidURL("must start with postgres:// or postgresql://")
            }
            let (beforeQuery, query) = rest.splitOnce("?")
            let (authority, path) = beforeQuery.splitOnce("/")
            guard let path, !path.isEmpty, !path.contains("/") else {
                throw InvalidURL("must name exactly one database as its path (postgres://user:password@host/database)")
            }
            guard let at = authority.lastIndex(of: "@") else {
                throw InvalidURL("names no user (postgres://user:password@host/database)")
            }
            let (userText, passwordText) = authority[..<at].splitOnce(":")
            let hostPort = authority[authority.index(after: at)...]

            guard let user = Self.decode(userText), !user.isEmpty else {
                throw InvalidURL("names no user, or holds characters that must be percent-encoded in it")
            }
            var password: String?
            if let passwordText {
                guard let decoded = Self.decode(passwordText) else {
                    throw InvalidURL("has a password with characters that must be percent-encoded (e.g. @ as %40, / as %2F)")
                }
                password = decoded
            }
            guard let database = Self.decode(path), !database.isEmpty else {
                throw InvalidURL("has a database name with characters that must be percent-encoded")
            }

            var host: Substring
            var portText: Substring?
            if hostPort.hasPrefix("[") {
                // An IPv6 literal: [::1]:5432
                guard let close = hostPort.firstIndex(of: "]") else { throw InvalidURL("has an unclosed [ in its host") }
                host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
                let after = hostPort[hostPort.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":") else { throw InvalidURL("has something after its host that is not a port") }
                    portText = after.dropFirst()
                }
            } else {
                (host, portText) = hostPort.splitOnce(":")
            }
            guard !host.isEmpty else { throw InvalidURL("names no host") }
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._:%".contains($0)) }) else {
                throw InvalidURL("has an invalid host name")
            }
            var port = 5432
            if let portText {
                guard let number = Int(portText), (1...65_535).contains(number) else {
                    throw InvalidURL("port must be 1-65535")
                }
                port = number
            }

            var tls = TLSMode.disable
            for parameter in (query ?? "").split(separator: "&") {
                let (name, value) = parameter.splitOnce("=")
                switch name {
                case "sslmode":
                    guard let mode = value.flatMap({ TLSMode(rawValue: String($0)) }) else {
                        throw InvalidURL("sslmode must be one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    tls = mode
                default:
                    throw InvalidURL("unknown parameter '\(Self.decode(name) ?? "?")' (only sslmode is read)")
                }
            }
            self.init(host: String(host), port: port, username: user, password: password, database: database, tls: tls)
        }

        /// Percent-decodes a URL part; `nil` when it holds a character RFC 3986 does not allow
        /// there unencoded, or a broken `%` escape.
        private static func decode(_ part: Substring) -> String? {
            let allowed = "-._~!$&'()*+,;=%"
            guard part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || allowed.contains($0)) }) else { return nil }
            return String(part).removingPercentEncoding
        }
    }

    /// What is wrong with a `postgres://` URL.
    public struct InvalidURL: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}

extension PostgresNoticeStore.Configuration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The URL without its password, for logs.
    public var redactedURL: String {
        let credentials = username + (password == nil ? "" : ":***")
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(credentials)@\(hostPart):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }

    public var description: String {
        "PostgresNoticeStore.Configuration(url: \(redactedURL), pool: \(maximumConnections), connectTimeout: \(connectTimeout), queryTimeout: \(queryTimeout))"
    }

    public var debugDescription: String { description }

    /// `dump` and the debugger see the redacted URL, not the password.
    public var customMirror: Mirror {
        Mirror(self, children: ["url": redactedURL, "maximumConnections": maximumConnections, "queryTimeout": queryTimeout])
    }
}

extension Substring {
    /// The part before the first `separator` and the part after it (`nil` if there is none).
    fileprivate func splitOnce(_ separator: Character) -> (Substring, Substring?) {
        guard let index = firstIndex(of: separator) else { return (self, nil) }
        return (self[..<index], self[self.index(after: index)...])
    }
}

extension Duration {
    /// Whole milliseconds, for PostgreSQL settings (saturating: a setting may be absurd).
    var saturatedMilliseconds: Int64 { saturatedNanoseconds / 1_000_000 }
}
