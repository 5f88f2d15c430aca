import Testing
import TokenIntrospection

@testable import NoticeServer

/// The introspection rate and wait settings at their edges and beyond (hostile values name the key).
@Suite struct IntrospectionSettingsTests {
    let base = ["NOTICE_INTROSPECTION_URL": "https://auth.example/introspect", "NOTICE_NODE_ID": "unit"]

    func read(_ key: String, _ value: String) throws(ConfigurationError) -> IntrospectionConfiguration? {
        var values = base
        values[key] = value
        return try NoticeServiceConfiguration(values: values).introspection
    }

    @Test func theEdgesAreAccepted() throws {
        #expect(try read("NOTICE_INTROSPECTION_MAX_RATE", "1")?.maxRequestsPerSecond == 1)
        #expect(try read("NOTICE_INTROSPECTION_MAX_RATE", " 100000 ")?.maxRequestsPerSecond == 100_000)
        #expect(try read("NOTICE_INTROSPECTION_MAX_WAIT_MS", "0")?.maxRateWait == .zero)
        #expect(try read("NOTICE_INTROSPECTION_MAX_WAIT_MS", "60000")?.maxRateWait == .seconds(60))
    }

    @Test(arguments: [
        ("NOTICE_INTROSPECTION_MAX_RATE", "0"), ("NOTICE_INTROSPECTION_MAX_RATE", "100001"),
        ("NOTICE_INTROSPECTION_MAX_RATE", "-1"), ("NOTICE_INTROSPECTION_MAX_RATE", ""),
        ("NOTICE_INTROSPECTION_MAX_RATE", "9223372036854775808"), ("NOTICE_INTROSPECTION_MAX_RATE", "5e2"),
        ("NOTICE_INTROSPECTION_MAX_WAIT_MS", "-1"), ("NOTICE_INTROSPECTION_MAX_WAIT_MS", "60001"),
        ("NOTICE_INTROSPECTION_MAX_WAIT_MS", "9223372036854775807"), ("NOTICE_INTROSPECTION_MAX_WAIT_MS", "5 s"),
    ])
    func valuesOutsideTheBoundsAreRefusedByName(key: String, value: String) {
        do {
            _ = try read(key, value)
            Issue.record("accepted \(key)=\(value)")
        } catch {
            #expect(error.description.contains(key))
        }
    }
}
