/// A change of a user's inbox state (SPEC §7), the same whether it comes over HTTP
/// (`POST /api/notices/state`, `POST /api/notices/<id>/<action>`) or STOMP
/// (`SEND /app/notices/state`). Pure: parsing and bounds only; the store applies it.
public struct InboxCommand: Sendable, Hashable {
    public var action: InboxAction
    public var selection: InboxSelection

    public init(action: InboxAction, selection: InboxSelection) {
        self.action = action
        self.selection = selection
    }

    /// Most ids one command may name.
    public static let maxIds = 200

    /// The command a JSON body names:
    /// `{"action":"read","ids":["1","2"]}`, `{"action":"archive","upTo":"<id>","category":"hr"}`
    /// or `{"action":"read","all":true,"category":"hr"}`; exactly one of `ids`, `upTo`, `all`.
    public static func parse(_ value: JSONValue) throws(InboxCommandError) -> InboxCommand {
        guard case .object(let object) = value else { throw InboxCommandError("expected a JSON object") }
        for key in object.keys where !["action", "ids", "upTo", "all", "category"].contains(key) {
            throw InboxCommandError("unknown field \"\(key.prefix(64))\"")
        }
        guard case .string(let name)? = object["action"], let action = InboxAction(rawValue: name) else {
            throw InboxCommandError("action must be one of \(InboxAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let category: String?
        do {
            category = try NoticeValidator.parseCategory(object["category"])
        } catch {
            throw InboxCommandError(error.description)
        }
        let named = [object["ids"], object["upTo"], object["all"]].compactMap { $0 }.count
        guard named == 1 else { throw InboxCommandError("give exactly one of ids, upTo, all") }
        if let ids = object["ids"] {
            guard category == nil else { throw InboxCommandError("category goes with upTo or all, not with ids") }
            guard case .array(let values) = ids, !values.isEmpty, values.count <= maxIds else {
                throw InboxCommandError("ids must be an array of 1 to \(maxIds) notice ids")
            }
            var parsed: [Int64] = []
            parsed.reserveCapacity(values.count)
            for value in values {
                guard let id = try? NoticeValidator.parseId(value) else { throw InboxCommandError("ids: each must be a notice id") }
                parsed.append(id)
            }
            return InboxCommand(action: action, selection: .ids(parsed))
        }
        if let upTo = object["upTo"] {
            guard let id = try? NoticeValidator.parseId(upTo) else { throw InboxCommandError("upTo must be a notice id") }
            return InboxCommand(action: action, selection: .upTo(id, category: category))
        }
        guard object["all"] == .bool(true) else { throw InboxCommandError("all must be true") }
        return InboxCommand(action: action, selection: .all(category: category))
    }
}

/// What an ``InboxCommand`` does to each selected row.
public enum InboxAction: String, Sendable, Hashable, CaseIterable {
    /// Sets `read_at` (and `seen_at`, if unset): reading a notice means having seen it.
    case read
    /// Clears `read_at`.
    case unread
    /// Sets `seen_at`: the notice was shown (the badge's "unseen" count).
    case seen
    /// Sets `archived_at`: out of the list and the counts, listed with `archived=true`.
    case archive
    /// Clears `archived_at`.
    case unarchive
    /// Deletes the user's row (other recipients keep theirs).
    case delete
}

/// Which of a user's rows an ``InboxCommand`` applies to.
public enum InboxSelection: Sendable, Hashable {
    /// These notices (ids the user has no row for are skipped).
    case ids([Int64])
    /// This notice and every one stored for the user before it (the list's order), optionally
    /// only those of one category: "mark all read" up to what the user has been shown.
    case upTo(Int64, category: String?)
    /// Every row of the user, optionally only those of one category.
    case all(category: String?)
}

/// Why a body is not an ``InboxCommand``.
public struct InboxCommandError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A user's inbox counts, each exact up to ``cap`` (SPEC §7): the store stops counting at
/// `cap + 1`, so a count costs at most that many index entries however full the inbox is.
public struct NoticeCounts: Sendable, Hashable {
    /// Unread, not archived (at most `cap + 1`).
    public var unread: Int
    /// Unseen, not archived (at most `cap + 1`).
    public var unseen: Int
    public var cap: Int

    public init(unread: Int, unseen: Int, cap: Int) {
        self.unread = unread
        self.unseen = unseen
        self.cap = cap
    }

    /// The most any count may be asked to reach.
    public static let maxCap = 9_999
    /// What badges show by default ("99+").
    public static let defaultCap = 99
}

extension InboxCommand {
    /// The event every session of the user receives on the events destination once the
    /// command changed something: `{"type":"read","ids":["1"]}`, `{"type":"archived","upTo":"9",
    /// "category":"hr"}`, `{"type":"deleted","all":true}` (docs/inbox.md).
    public var event: JSONValue {
        var members: [(String, JSONValue)] = [("type", .string(action.eventType))]
        switch selection {
        case .ids(let ids):
            members.append(("ids", .array(ids.map { .string(String($0)) })))
        case .upTo(let id, let category):
            members.append(("upTo", .string(String(id))))
            if let category { members.append(("category", .string(category))) }
        case .all(let category):
            members.append(("all", .bool(true)))
            if let category { members.append(("category", .string(category))) }
        }
        return .object(JSONObject(members))
    }
}

extension InboxAction {
    /// The `type` of its event: what happened.
    public var eventType: String {
        switch self {
        case .read: "read"
        case .unread: "unread"
        case .seen: "seen"
        case .archive: "archived"
        case .unarchive: "unarchived"
        case .delete: "deleted"
        }
    }
}

extension NoticeCounts {
    /// The counts as the API and the events destination show them: each at most ``cap``,
    /// flagged when there are more.
    public func json(category: String? = nil, type: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let type { members.append(("type", .string(type))) }
        members += [
            ("unread", .number(String(min(unread, cap)))),
            ("unseen", .number(String(min(unseen, cap)))),
            ("unreadCapped", .bool(unread > cap)),
            ("unseenCapped", .bool(unseen > cap)),
            ("cap", .number(String(cap))),
        ]
        if let category { members.append(("category", .string(category))) }
        return .object(JSONObject(members))
    }
}

/// Applies inbox commands to the store and, when one changed something, tells every session
/// of the user on every node (`announce`: this node's hub and the cluster relay). The one
/// path for HTTP and STOMP.
///
/// Every change is also handed to `publish` (routing key, JSON) for the `notice.events`
/// exchange: `{"type":"read","userId":"1","ids":["5"],"at":"…"}`, one per command and user;
/// a recall is one `{"type":"recalled","ids":["5"],"recipients":n,"at":"…"}`.
public struct InboxChanges: Sendable {
    public let store: any NoticeStore
    private let announce: @Sendable ([PushNotice]) -> Void
    private let publish: @Sendable (_ routingKey: String, _ event: JSONValue) -> Void

    public init(
        store: any NoticeStore,
        announce: @escaping @Sendable ([PushNotice]) -> Void,
        publish: @escaping @Sendable (_ routingKey: String, _ event: JSONValue) -> Void = { _, _ in }
    ) {
        self.store = store
        self.announce = announce
        self.publish = publish
    }

    /// `event` with `userId` after its type and `at` last, for the exchange.
    private static func published(_ event: JSONValue, userId: String?, extra: [(String, JSONValue)] = [], at millis: Int64) -> JSONValue {
        guard case .object(let object) = event else { return event }
        var members: [(String, JSONValue)] = []
        for member in object {
            members.append((member.key, member.value))
            if member.key == "type", let userId { members.append(("userId", .string(userId))) }
        }
        return .object(JSONObject(members + extra + [("at", .string(NoticeTimestamp.rfc3339(millis: millis)))]))
    }

    /// Recalls a notice (``NoticeStore/recall(noticeId:)``) and tells each of its recipients'
    /// sessions — every user's, for an announcement — (`{"type":"recalled","ids":["<id>"]}`);
    /// `false` when there is no such notice.
    public func recall(noticeId: Int64, at millis: Int64) async throws -> Bool {
        guard let recalled = try await store.recall(noticeId: noticeId) else { return false }
        let event = JSONValue.object(JSONObject([("type", .string("recalled")), ("ids", .array([.string(String(noticeId))]))]))
        var events = recalled.recipients.map { PushNotice.inboxEvent(event, for: $0) }
        if recalled.announcement { events.append(.inboxEvent(event, for: nil)) }
        if !events.isEmpty { announce(events) }
        var extra: [(String, JSONValue)] = [("recipients", .number(String(recalled.recipients.count)))]
        if recalled.announcement { extra.append(("broadcast", .bool(true))) }
        publish("recalled", Self.published(event, userId: nil, extra: extra, at: millis))
        return true
    }

    /// ``NoticeStore/apply(_:userId:at:)``, then the event (if any row changed).
    @discardableResult
    public func apply(_ command: InboxCommand, userId: String, at millis: Int64) async throws -> Int {
        let changed = try await store.apply(command, userId: userId, at: millis)
        if changed > 0 {
            announce([.inboxEvent(command.event, for: userId)])
            publish(command.action.eventType, Self.published(command.event, userId: userId, at: millis))
        }
        return changed
    }
}
