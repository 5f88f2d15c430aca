/// Turns a queue message body into a ``NoticeRecord`` or says exactly why not (SPEC §2).
public struct NoticeValidator: Sendable {
    public static let maxUserIdLength = 128
    public static let maxTitleBytes = 1024
    public static let maxCategoryBytes = 64
    public static let maxCollapseKeyBytes = 128
    /// 9999-12-31T23:59:59.999Z: the last instant `expiresAt` may name.
    public static let maxExpiresAtMillis: Int64 = 253_402_300_799_999
    public static let maxContentBytes = 65_536
    /// Multicast fan-out bound, so one message cannot make millions of rows.
    public static let maxRecipients = 10_000

    public init() {}

    /// Parses and validates `body`; `assignId` is called only when the record has no `id`.
    public func validate(_ body: [UInt8], assignId: () -> Int64) throws(NoticeValidationError) -> NoticeRecord {
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw NoticeValidationError("invalid JSON: \(error)")
        }
        guard case .object(let fields) = value else { throw NoticeValidationError("the record must be a JSON object") }

        var id: Int64
        var idWasAssigned = false
        if let idValue = fields["id"] {
            id = try Self.parseId(idValue)
        } else {
            id = assignId()
            idWasAssigned = true
        }

        let broadcast: Bool
        switch fields["broadcast"] {
        case nil, .null?: broadcast = false
        case .bool(let flag)?: broadcast = flag
        default: throw NoticeValidationError("broadcast must be a boolean")
        }
        let present = [fields["userId"] != nil, fields["userIds"] != nil, broadcast].filter { $0 }.count
        guard present == 1 else {
            throw NoticeValidationError("exactly one of userId, userIds or broadcast:true must be present")
        }

        let audience: NoticeRecord.Audience
        if broadcast {
            audience = .broadcast
        } else if let userId = fields["userId"] {
            audience = .users([try Self.parseUserId(userId, field: "userId")])
        } else {
            guard case .array(let values)? = fields["userIds"], !values.isEmpty else {
                throw NoticeValidationError("userIds must be a non-empty array")
            }
            guard values.count <= Self.maxRecipients else {
                throw NoticeValidationError("userIds has more than \(Self.maxRecipients) entries")
            }
            var seen = Set<String>()
            var users: [String] = []
            for value in values {
                let user = try Self.parseUserId(value, field: "userIds")
                if seen.insert(user).inserted { users.append(user) }
            }
            audience = .users(users)
        }

        var sendTarget: String?
        switch fields["sendTarget"] {
        case nil, .null?: sendTarget = nil
        case .string(let text)?: sendTarget = text
        case .number(let text)? where Self.isInteger(text): sendTarget = text
        default: throw NoticeValidationError("sendTarget must be a string or an integer")
        }

        try Self.checkText(fields["title"], field: "title", maxBytes: Self.maxTitleBytes)
        try Self.checkText(fields["content"], field: "content", maxBytes: Self.maxContentBytes)
        let category = try Self.parseCategory(fields["category"])
        let expiresAt = try Self.parseExpiresAt(fields["expiresAt"])
        let collapseKey = try Self.parseCollapseKey(fields["collapseKey"])

        return NoticeRecord(
            id: id,
            idWasAssigned: idWasAssigned,
            audience: audience,
            sendTarget: sendTarget,
            category: category,
            expiresAtMillis: expiresAt,
            collapseKey: collapseKey,
            fields: fields
        )
    }

    /// A notice id from JSON: a positive integer, as a number or a string of digits.
    public static func parseId(_ value: JSONValue) throws(NoticeValidationError) -> Int64 {
        let text: String
        switch value {
        case .number(let number): text = number
        case .string(let string): text = string
        default: throw NoticeValidationError("id must be an integer or a string of digits")
        }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let id = Int64(text)
        else { throw NoticeValidationError("id must be a non-negative integer below 2^63 (digits only)") }
        return id
    }

    public static func parseUserId(_ value: JSONValue, field: String) throws(NoticeValidationError) -> String {
        switch value {
        case .number(let text) where isInteger(text):
            // A number is a user id of its digits: bounded like one given as a string.
            guard text.utf8.count <= maxUserIdLength else {
                throw NoticeValidationError("\(field): a user id must be at most \(maxUserIdLength) characters")
            }
            return text
        case .string(let text):
            guard !text.isEmpty else { throw NoticeValidationError("\(field): a user id must not be empty") }
            guard text.unicodeScalars.count <= maxUserIdLength else {
                throw NoticeValidationError("\(field): a user id must be at most \(maxUserIdLength) characters")
            }
            guard !text.unicodeScalars.contains(where: { $0 == "/" || $0.value < 0x20 || $0.value == 0x7F }) else {
                throw NoticeValidationError("\(field): a user id must not contain '/' or control characters")
            }
            return text
        default:
            throw NoticeValidationError("\(field): a user id must be an integer or a non-empty string")
        }
    }

    /// A category (inbox counts and state changes can be per category): absent or null, or a
    /// non-empty string of at most ``maxCategoryBytes`` without control characters.
    public static func parseCategory(_ value: JSONValue?) throws(NoticeValidationError) -> String? {
        try parseName(value, field: "category", maxBytes: maxCategoryBytes)
    }

    /// `collapseKey`: as a category, up to ``maxCollapseKeyBytes``.
    static func parseCollapseKey(_ value: JSONValue?) throws(NoticeValidationError) -> String? {
        try parseName(value, field: "collapseKey", maxBytes: maxCollapseKeyBytes)
    }

    /// Absent or null, or a non-empty string of at most `maxBytes` without control characters.
    static func parseName(_ value: JSONValue?, field: String, maxBytes: Int) throws(NoticeValidationError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?:
            guard !text.isEmpty, text.utf8.count <= maxBytes, !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            else {
                throw NoticeValidationError("\(field) must be a non-empty string of at most \(maxBytes) bytes without control characters")
            }
            return text
        default: throw NoticeValidationError("\(field) must be a string")
        }
    }

    /// `expiresAt`: absent or null, an RFC 3339 date-time, or Unix milliseconds; 1970 to 9999.
    static func parseExpiresAt(_ value: JSONValue?) throws(NoticeValidationError) -> Int64? {
        switch value {
        case nil, .null?:
            return nil
        case .string(let text)?:
            guard let millis = NoticeTimestamp.millis(rfc3339: text), (0...maxExpiresAtMillis).contains(millis) else {
                throw NoticeValidationError("expiresAt must be an RFC 3339 date-time (e.g. 2026-12-31T23:59:59Z) from 1970 to 9999")
            }
            return millis
        case .number(let text)? where isInteger(text):
            guard let millis = Int64(text), (0...maxExpiresAtMillis).contains(millis) else {
                throw NoticeValidationError("expiresAt in milliseconds must be from 0 to \(maxExpiresAtMillis)")
            }
            return millis
        default:
            throw NoticeValidationError("expiresAt must be an RFC 3339 date-time or an integer of Unix milliseconds")
        }
    }

    static func isInteger(_ text: String) -> Bool {
        var digits = Substring(text)
        if digits.first == "-" { digits = digits.dropFirst() }
        return !digits.isEmpty && digits.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    static func checkText(_ value: JSONValue?, field: String, maxBytes: Int) throws(NoticeValidationError) {
        switch value {
        case nil, .null?: return
        case .string(let text)?:
            guard text.utf8.count <= maxBytes else {
                throw NoticeValidationError("\(field) is longer than \(maxBytes) bytes")
            }
        default: throw NoticeValidationError("\(field) must be a string")
        }
    }
}
