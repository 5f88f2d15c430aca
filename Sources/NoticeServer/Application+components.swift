import AsyncHTTPClient
import CoreMetrics
import Logging
import NoticeCore
import NoticeStore
import ServiceLifecycle
import TokenIntrospection

/// The store the configuration names, migrated, and what runs it while it is used: the
/// PostgreSQL pool is a service of its own (SQLite needs none); `StoreCloser` closes either.
struct OpenedStore {
    let store: any NoticeStore
    let service: (any Service)?
}

/// Opens and migrates the store; closed again if the migration fails.
func openStore(_ database: NoticeServiceConfiguration.Database, logger: Logger) async throws -> OpenedStore {
    let opened: OpenedStore
    switch database {
    case .sqlite(let path):
        opened = OpenedStore(store: try SQLiteNoticeStore(path: path), service: nil)
    case .postgres(let postgres):
        let store = PostgresNoticeStore(configuration: postgres, logger: logger)
        opened = OpenedStore(store: store, service: store)
    }
    do {
        try await opened.store.migrate()
    } catch {
        try? await opened.store.close()
        throw error
    }
    return opened
}

/// How tokens are checked, and the HTTP client that introspection needs (the caller runs it
/// as a service so that it is shut down last).
struct TokenCheck {
    let verifier: any TokenVerifier
    let httpClient: HTTPClient?
}

/// Introspection when an endpoint is configured, else the development token table.
func makeTokenCheck(_ configuration: NoticeServiceConfiguration, metrics: any MetricsFactory, logger: Logger) throws -> TokenCheck {
    if let introspection = configuration.introspection {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let introspectionClient = IntrospectionClient(configuration: introspection, httpClient: client)
        let introspector = TokenIntrospector(configuration: introspection, metrics: metrics) { token in
            await introspectionClient.introspect(token)
        }
        logger.info("tokens are checked by introspection", metadata: ["auth.introspection": "\(introspection)"])
        return TokenCheck(verifier: IntrospectionVerifier(introspector: introspector, logger: logger), httpClient: client)
    }
    if let devTokens = configuration.devTokens {
        logger.warning(
            "NOTICE_DEV_TOKENS is set: tokens are checked against a fixed development table, not an authorization server. Never use this in production."
        )
        return TokenCheck(verifier: DevTokenVerifier(users: devTokens), httpClient: nil)
    }
    throw ConfigurationError(problems: ["no token verifier configured"])
}
