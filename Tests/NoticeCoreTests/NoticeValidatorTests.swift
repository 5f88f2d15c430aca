import Synchronization
import Testing

@testable import NoticeCore

@Suite struct NoticeValidatorTests {
    let validator = NoticeValidator()

    func validate(_ text: String) throws(NoticeValidationError) -> NoticeRecord {
        try validator.validate(Array(text.utf8)) { 42 }
    }

    func reason(_ text: String) -> String? {
        do {
            _ = try validate(text)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func acceptsTheLegacyRecord() throws {
        let record = try validate(#"{"id":123,"userId":7,"title":"t","content":"<b>c</b>","sendTarget":"SYS","extra":{"k":[1]}}"#)
        #expect(record.id == 123)
        #expect(!record.idWasAssigned)
        #expect(record.audience == .users(["7"]))
        #expect(record.isPushed(pushTargets: ["SYS"]))
        let payload = record.payload(for: "7", createdAt: "2026-01-01T00:00:00.000Z")
        #expect(
            payload
                == #"{"id":"123","userId":"7","title":"t","content":"<b>c</b>","sendTarget":"SYS","extra":{"k":[1]},"createdAt":"2026-01-01T00:00:00.000Z"}"#
        )
    }

    @Test func assignsAnIdWhenAbsent() throws {
        let record = try validate(#"{"userId":"u","title":"x"}"#)
        #expect(record.id == 42)
        #expect(record.idWasAssigned)
        #expect(record.payload(for: "u", createdAt: "c") == #"{"userId":"u","title":"x","id":"42","createdAt":"c"}"#)
    }

    @Test func idsMayBeDigitStrings() throws {
        #expect(try validate(#"{"id":"9223372036854775807","userId":1}"#).id == Int64.max)
        #expect(reason(#"{"id":"9223372036854775808","userId":1}"#) != nil)
        #expect(reason(#"{"id":"12a","userId":1}"#) != nil)
        #expect(reason(#"{"id":-1,"userId":1}"#) != nil)
        #expect(reason(#"{"id":1.5,"userId":1}"#) != nil)
        #expect(reason(#"{"id":true,"userId":1}"#) != nil)
    }

    @Test func multicastDeduplicatesAndKeepsOrder() throws {
        let record = try validate(#"{"userIds":[3,"1",3,"a"],"title":"x"}"#)
        #expect(record.audience == .users(["3", "1", "a"]))
        #expect(record.payload(for: "1", createdAt: "c") == #"{"userId":"1","title":"x","id":"42","createdAt":"c"}"#)
    }

    @Test func broadcastHasNoRecipient() throws {
        let record = try validate(#"{"broadcast":true,"title":"all"}"#)
        #expect(record.audience == .broadcast)
        #expect(record.payload(for: nil, createdAt: "c") == #"{"broadcast":true,"title":"all","id":"42","createdAt":"c"}"#)
    }

    @Test func exactlyOneAudience() {
        #expect(reason(#"{"title":"x"}"#)?.contains("exactly one") == true)
        #expect(reason(#"{"userId":1,"userIds":[2]}"#)?.contains("exactly one") == true)
        #expect(reason(#"{"userId":1,"broadcast":true}"#)?.contains("exactly one") == true)
        #expect(reason(#"{"broadcast":false}"#)?.contains("exactly one") == true)
        #expect(reason(#"{"broadcast":"yes","userId":1}"#) != nil)
        #expect((try? validate(#"{"broadcast":false,"userId":1}"#)) != nil)
    }

    @Test func userIdRules() {
        #expect(reason(#"{"userId":""}"#) != nil)
        #expect(reason(#"{"userId":"a/b"}"#) != nil)
        #expect(reason(#"{"userId":"a\nb"}"#) != nil)
        #expect(reason(#"{"userId":1.5}"#) != nil)
        #expect(reason(#"{"userId":null}"#) != nil)
        #expect(reason(#"{"userId":["1"]}"#) != nil)
        #expect(reason("{\"userId\":\"\(String(repeating: "x", count: 129))\"}") != nil)
        #expect((try? validate("{\"userId\":\"\(String(repeating: "é", count: 128))\"}")) != nil)
        // A number is bounded by its digits like a string id (5,000 digits went through before).
        #expect(reason("{\"userId\":\(String(repeating: "7", count: 129))}") != nil)
        #expect(reason("{\"userIds\":[1,\(String(repeating: "7", count: 5_000))]}") != nil)
        #expect((try? validate("{\"userId\":\(String(repeating: "7", count: 128))}")) != nil)
        #expect(reason(#"{"userIds":[]}"#) != nil)
        #expect(reason(#"{"userIds":"1"}"#) != nil)
        #expect(reason(#"{"userIds":[1,""]}"#) != nil)
    }

    @Test func textLimits() {
        #expect(reason("{\"userId\":1,\"title\":\"\(String(repeating: "x", count: 1025))\"}") != nil)
        #expect((try? validate("{\"userId\":1,\"title\":\"\(String(repeating: "x", count: 1024))\"}")) != nil)
        #expect(reason("{\"userId\":1,\"content\":\"\(String(repeating: "x", count: 65_537))\"}") != nil)
        #expect(reason(#"{"userId":1,"title":5}"#) != nil)
        #expect(reason(#"{"userId":1,"content":{}}"#) != nil)
    }

    @Test func sendTargetDecidesPushNotStorage() throws {
        #expect(try validate(#"{"userId":1,"sendTarget":"MAIL"}"#).isPushed(pushTargets: ["SYS"]) == false)
        #expect(try validate(#"{"userId":1,"sendTarget":2}"#).isPushed(pushTargets: ["SYS", "2"]))
        #expect(try validate(#"{"userId":1}"#).isPushed(pushTargets: ["SYS"]))
        #expect(reason(#"{"userId":1,"sendTarget":[1]}"#) != nil)
    }

    @Test func notAnObject() {
        #expect(reason("[1]") == "the record must be a JSON object")
        #expect(reason("not json")?.hasPrefix("invalid JSON") == true)
    }

    @Test func replacesAPublishedCreatedAt() throws {
        let record = try validate(#"{"createdAt":"fake","userId":1}"#)
        #expect(record.payload(for: "1", createdAt: "real") == #"{"userId":"1","id":"42","createdAt":"real"}"#)
    }
}

@Suite struct NoticeIDGeneratorTests {
    @Test func idsIncreaseEvenWhenTheClockStandsStillOrStepsBack() {
        let times = [1_800_000_000_000, 1_800_000_000_000, 1_799_999_999_000, 1_800_000_000_001] as [Int64]
        let index = Mutex(0)
        let generator = NoticeIDGenerator(nodeId: "n1") {
            index.withLock { i in
                defer { i = min(i + 1, times.count - 1) }
                return times[i]
            }
        }
        let ids = (0..<4).map { _ in generator.next() }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == 4)
        #expect(ids.allSatisfy { $0 > 0 })
    }
}
