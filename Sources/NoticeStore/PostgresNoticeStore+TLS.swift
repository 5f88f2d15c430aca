import PostgresNIO

extension PostgresNoticeStore.Configuration.TLSMode {
    var postgresTLS: PostgresClient.Configuration.TLS {
        self == .disable ? .disable : .require(tlsConfiguration)
    }

    /// libpq's meaning: `require` encrypts without checking the certificate, `verify-full` checks it.
    var tlsConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if self == .require { tls.certificateVerification = .none }
        return tls
    }
}
