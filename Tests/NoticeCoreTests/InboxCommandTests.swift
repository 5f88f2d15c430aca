import NoticeCore
import Testing

@Suite struct NoticeBodyTests {
    func record(_ json: String) throws -> NoticeRecord {
        try NoticeValidator().validate(Array(json.utf8)) { 5 }
    }

    @Test(arguments: [
        #"{"id":1,"userId":"42","title":"x"}"#,
        #"{"userIds":[1,"b","c\"d"],"meta":{"userId":"nested"},"content":"\"userId\":\"\""}"#,
        #"{"id":"3","broadcast":true,"title":"all"}"#,
        #"{"title":"first","userId":7,"createdAt":"published","tail":[1,2]}"#,
    ])
    func theSharedBodyGivesEachRecipientExactlyItsOwnPayload(_ json: String) throws {
        let record = try record(json)
        let body = record.body(createdAt: "2026-12-04T00:00:00.000Z")
        let recipients: [String?] =
            switch record.audience {
            case .broadcast: [nil]
            case .users(let users): users + ["q\"u\\o\nte", "ünï\u{1F600}"]
            }
        for recipient in recipients {
            let payload = body.payload(for: recipient)
            guard case .object(let object) = try JSONParser.parse(Array(payload.utf8)) else {
                Issue.record("not an object: \(payload)")
                continue
            }
            #expect(object["userId"] == recipient.map(JSONValue.string))
            #expect(object["userIds"] == nil)
            #expect(object["createdAt"] == .string("2026-12-04T00:00:00.000Z"))
            #expect(object["id"] == .string(String(record.id)))
        }
        #expect((body.recipientOffset == nil) == (record.audience == .broadcast))
    }

    @Test func anOffsetOutsideTheTextIsIgnored() {
        #expect(NoticeBody(template: "{}", recipientOffset: 3).recipientOffset == nil)
        #expect(NoticeBody(template: "{}", recipientOffset: -1).recipientOffset == nil)
        #expect(NoticeBody(template: "{}", recipientOffset: Int.max).payload(for: "a") == "{}")
        #expect(NoticeBody(template: #"{"userId":""}"#, recipientOffset: 11).payload(for: "a") == #"{"userId":"a"}"#)
    }

    @Test func aCategoryIsBounded() throws {
        #expect(try record(#"{"userId":"1","category":"hr"}"#).category == "hr")
        #expect(try record(#"{"userId":"1","category":null}"#).category == nil)
        for bad in [#""""#, "3", #""\#(String(repeating: "c", count: 65))""#, #""a\nb""#, "[]"] {
            #expect(throws: NoticeValidationError.self) { try record(#"{"userId":"1","category":\#(bad)}"#) }
        }
    }
}

@Suite struct InboxCommandTests {
    func parse(_ json: String) throws -> InboxCommand {
        try InboxCommand.parse(try JSONParser.parse(Array(json.utf8)))
    }

    @Test func theThreeSelections() throws {
        #expect(try parse(#"{"action":"read","ids":["1",2]}"#) == InboxCommand(action: .read, selection: .ids([1, 2])))
        #expect(try parse(#"{"action":"archive","upTo":"9","category":"hr"}"#) == InboxCommand(action: .archive, selection: .upTo(9, category: "hr")))
        #expect(try parse(#"{"action":"delete","upTo":9}"#) == InboxCommand(action: .delete, selection: .upTo(9, category: nil)))
        #expect(try parse(#"{"action":"seen","all":true}"#) == InboxCommand(action: .seen, selection: .all(category: nil)))
        for action in InboxAction.allCases {
            #expect(try parse(#"{"action":"\#(action.rawValue)","all":true,"category":"it"}"#).action == action)
        }
    }

    @Test(arguments: [
        ("[]", "expected a JSON object"),
        (#"{"ids":["1"]}"#, "action must be one of"),
        (#"{"action":"READ","ids":["1"]}"#, "action must be one of"),
        (#"{"action":"read"}"#, "exactly one of"),
        (#"{"action":"read","ids":["1"],"all":true}"#, "exactly one of"),
        (#"{"action":"read","ids":[]}"#, "1 to 200"),
        (#"{"action":"read","ids":"1"}"#, "1 to 200"),
        (#"{"action":"read","ids":["-1"]}"#, "each must be a notice id"),
        (#"{"action":"read","ids":["99999999999999999999"]}"#, "each must be a notice id"),
        (#"{"action":"read","ids":["1"],"category":"hr"}"#, "category goes with upTo or all"),
        (#"{"action":"read","upTo":1.5}"#, "upTo must be a notice id"),
        (#"{"action":"read","all":false}"#, "all must be true"),
        (#"{"action":"read","all":true,"category":""}"#, "category must be"),
        (#"{"action":"read","all":true,"extra":1}"#, "unknown field \"extra\""),
    ])
    func malformedCommandsSayWhy(_ json: String, _ reason: String) throws {
        let error = #expect(throws: InboxCommandError.self) { try parse(json) }
        #expect(error?.description.contains(reason) == true, "\(error?.description ?? "")")
    }

    @Test func atMostTwoHundredIds() throws {
        let ids = (1...201).map { "\"\($0)\"" }
        #expect(throws: InboxCommandError.self) { try parse(#"{"action":"read","ids":[\#(ids.joined(separator: ","))]}"#) }
        #expect(try parse(#"{"action":"read","ids":[\#(ids.dropLast().joined(separator: ","))]}"#).selection == .ids(Array(1...200)))
    }
}

@Suite struct NoticeLifecycleFieldTests {
    func record(_ json: String) throws -> NoticeRecord {
        try NoticeValidator().validate(Array(json.utf8)) { 5 }
    }

    @Test func rfc3339RoundTripsAndBadTextIsRefused() {
        for millis: Int64 in [0, 1, 86_399_999, 951_782_400_000, 1_780_000_000_123, NoticeValidator.maxExpiresAtMillis] {
            #expect(NoticeTimestamp.millis(rfc3339: NoticeTimestamp.rfc3339(millis: millis)) == millis)
        }
        #expect(NoticeTimestamp.millis(rfc3339: "2026-12-31T23:59:59Z") == 1_798_761_599_000)
        #expect(NoticeTimestamp.millis(rfc3339: "2026-12-31t23:59:59.5z") == 1_798_761_599_500)
        #expect(NoticeTimestamp.millis(rfc3339: "2027-01-01T01:59:59+02:00") == 1_798_761_599_000)
        #expect(NoticeTimestamp.millis(rfc3339: "2026-12-31 18:59:59.123456789-05:00") == 1_798_761_599_123)
        for bad in [
            "", "2026-12-31", "2026-12-31T23:59:59", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-12-31T24:00:00Z",
            "1969-12-31T23:59:59Z", "２０２６-12-31T23:59:59Z", "2026-12-31T23:59:59.Z", "2026-12-31T23:59:59.1234567890Z",
            "2026-12-31T23:59:59+2:00", "2026-12-31T23:59:59Zjunk", "+2026-12-31T23:59:59Z", String(repeating: "9", count: 10_000),
        ] {
            #expect(NoticeTimestamp.millis(rfc3339: bad) == nil, "\(bad.prefix(40))")
        }
        #expect(NoticeTimestamp.millis(rfc3339: "2024-02-29T00:00:00Z") != nil)
    }

    @Test func expiresAtAndCollapseKeyAreBounded() throws {
        #expect(try record(#"{"userId":"1","expiresAt":"2026-12-31T23:59:59Z"}"#).expiresAtMillis == 1_798_761_599_000)
        #expect(try record(#"{"userId":"1","expiresAt":1798761599000}"#).expiresAtMillis == 1_798_761_599_000)
        #expect(try record(#"{"userId":"1","collapseKey":"build:main"}"#).collapseKey == "build:main")
        for bad in [
            #""tomorrow""#, "-1", "1.5", "253402300800000", "99999999999999999999", "true", #""2026-12-31""#,
        ] {
            #expect(throws: NoticeValidationError.self) { try record(#"{"userId":"1","expiresAt":\#(bad)}"#) }
        }
        for bad in [#""""#, "7", #""\#(String(repeating: "k", count: 129))""#, #""a\u0007""#] {
            #expect(throws: NoticeValidationError.self) { try record(#"{"userId":"1","collapseKey":\#(bad)}"#) }
        }
    }

    @Test func aNoticeExpiredOnArrivalIsStoredButNotPushed() throws {
        let expired = try record(#"{"id":1,"userId":"1","expiresAt":1000}"#)
        let live = try record(#"{"id":2,"userId":"1","expiresAt":3000}"#)
        let fanOut = NoticeFanOut(
            [.init(record: expired, redelivered: false), .init(record: live, redelivered: false)],
            pushTargets: ["SYS"],
            createdAtMillis: 2000
        )
        #expect(fanOut.rows.map(\.pushed) == [false, true])
        #expect(fanOut.rows.map(\.expiresAt) == [1000, 3000])
        let keys = Set(fanOut.rows.map(\.key))
        #expect(fanOut.notices(inserted: keys, retried: false, consumedAt: .now).map(\.key.noticeId) == [2])
    }
}
