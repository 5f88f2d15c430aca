import Foundation
import NoticeCore

/// The SQL both stores share: the body-once schema (SPEC §6) and its statements.
///
/// `notice_body` holds a notice once: its JSON with the recipient's id left out
/// (``NoticeBody``), when it was stored, its category, source key and whether it is pushed.
/// `notice_recipient` holds one small row per (notice, recipient) — `''` for a broadcast —
/// with its delivery and inbox state. A row moved from the one-table schema keeps the JSON
/// it was stored with in its own `payload` (its body has no recipient slot); new rows leave
/// it NULL.
enum NoticeSchema {
    /// The columns ``SQLiteNoticeStore/storedRow(_:)`` and the PostgreSQL decoder read, and
    /// the join they come from (`r`: the recipient row, `b`: its body).
    static let columns = "\(ownColumns)\n\(bodyJoin)"

    /// ``columns`` without their `FROM`: a user's own row.
    static let ownColumns = """
        r.notice_id, r.recipient, COALESCE(r.payload, b.payload) AS payload,
        CASE WHEN r.payload IS NULL THEN b.recipient_offset END AS recipient_offset,
        b.created_at, r.category, r.pushed, r.delivered_at, r.seen_at, r.read_at, r.archived_at, r.expires_at, r.collapse_key
        """

    static let bodyJoin = "FROM notice_recipient r JOIN notice_body b ON b.notice_id = r.notice_id"

    /// The names of ``columns``, for a query that selects them from a subquery.
    static let columnNames =
        "notice_id, recipient, payload, recipient_offset, created_at, category, pushed, delivered_at, seen_at, read_at, archived_at, expires_at, collapse_key"

    /// The store's clock, Unix ms: what has expired is decided by the node that reads.
    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The condition of a row that has not expired at `now` (a number of the store's own, never
    /// client input), for `r` or the unqualified table.
    static func live(_ now: Int64, table: String = "r.") -> String {
        live(String(now), table: table)
    }

    /// ``live(_:table:)`` with the time as SQL text: a number, or a parameter (so that the
    /// statement's text, and a cached statement, stays the same from one millisecond to the next).
    static func live(_ now: String, table: String = "r.") -> String {
        "(\(table)expires_at IS NULL OR \(table)expires_at > \(now))"
    }

    /// What an inbox action sets, as `UPDATE …`/`DELETE …` text to which the caller appends
    /// `WHERE <selection>` and then ``Change/unchanged`` (so that a row already in that state
    /// is not counted as changed). `millis` is the service's own clock, never client input.
    struct Change {
        var statement: String
        var unchanged: String
    }

    static func change(_ action: InboxAction, at millis: Int64) -> Change {
        let now = String(millis)
        switch action {
        case .read:
            return Change(
                statement: "UPDATE notice_recipient SET read_at = \(now), seen_at = COALESCE(seen_at, \(now))",
                unchanged: "AND read_at IS NULL"
            )
        case .unread:
            return Change(statement: "UPDATE notice_recipient SET read_at = NULL", unchanged: "AND read_at IS NOT NULL")
        case .seen:
            return Change(statement: "UPDATE notice_recipient SET seen_at = \(now)", unchanged: "AND seen_at IS NULL")
        case .archive:
            return Change(statement: "UPDATE notice_recipient SET archived_at = \(now)", unchanged: "AND archived_at IS NULL")
        case .unarchive:
            return Change(statement: "UPDATE notice_recipient SET archived_at = NULL", unchanged: "AND archived_at IS NOT NULL")
        case .delete:
            return Change(statement: "DELETE FROM notice_recipient", unchanged: "")
        }
    }

    /// How a store writes the `n`th (1-based) statement parameter.
    enum Dialect {
        case sqlite, postgres
        /// SQLite's numbered parameters may be used more than once, as PostgreSQL's.
        func parameter(_ n: Int) -> String { self == .sqlite ? "?\(n)" : "$\(n)" }
        /// The type of the time and sequence columns.
        var integer: String { self == .sqlite ? "INTEGER" : "bigint" }
    }

    /// Counts a user's not-archived, not-expired rows whose `state` (`read_at`, `seen_at`) is unset, at
    /// most the limit: parameters user id, then category (with `byCategory`), then the limit.
    /// It walks only the `notice_unread`/`notice_unseen` index (`NoticeStoreTests` checks
    /// the plans), never more than limit entries of it.
    static func countSQL(_ state: String, byCategory: Bool, _ dialect: Dialect, now: String) -> String {
        let category = byCategory ? "AND category = \(dialect.parameter(2))" : ""
        // SQLite without statistics may prefer the list's index for the whole count: name the
        // count's (an error, not a silent scan, should it ever not fit).
        let index = dialect == .sqlite ? "INDEXED BY \(state == "read_at" ? "notice_unread" : "notice_unseen")" : ""
        return """
            SELECT count(*) FROM (SELECT 1 FROM notice_recipient \(index) WHERE recipient = \(dialect.parameter(1)) AND \(state) IS NULL \
            AND archived_at IS NULL \(category) AND \(live(now, table: "")) LIMIT \(dialect.parameter(byCategory ? 3 : 2))) counted
            """
    }

    /// A notice's totals of user rows: recipients, delivered, seen, read (the notice id is
    /// the one parameter, written `placeholder`).
    static func receiptTotals(_ placeholder: String) -> String {
        """
        SELECT count(*), count(delivered_at), count(seen_at), count(read_at) FROM notice_recipient
        WHERE notice_id = \(placeholder) AND recipient <> ''
        """
    }

    /// A batch as both stores write it, so that it ends as a run of single inserts would: a
    /// key given twice is one row (the first), and `replaced[i]` says that a later row has the
    /// same recipient and collapse key as `rows[i]` — the later notice replaces it before anyone
    /// could read it, so it is not stored for that recipient (docs/inbox.md).
    static func batch(_ given: [NoticeRow]) -> (rows: [NoticeRow], replaced: [Bool]) {
        struct Slot: Hashable {
            var recipient: String
            var collapseKey: String
        }
        var keys = Set<NoticeKey>()
        let rows = given.filter { keys.insert($0.key).inserted }
        var replaced = [Bool](repeating: false, count: rows.count)
        var later = Set<Slot>()
        for index in rows.indices.reversed() {
            guard let recipient = rows[index].recipient, let key = rows[index].collapseKey else { continue }
            replaced[index] = !later.insert(Slot(recipient: recipient, collapseKey: key)).inserted
        }
        return (rows, replaced)
    }

    /// SQLite: a notice's body, once per notice id. A later message with the same id adds
    /// recipients to the stored notice; it only replaces a body that has no recipient slot
    /// (one moved from the one-table schema), so that its new recipients get their own id.
    static let insertBody = """
        INSERT INTO notice_body (notice_id, payload, recipient_offset, created_at, category, expires_at, collapse_key, source_key, pushed)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (notice_id) DO UPDATE SET payload = excluded.payload, recipient_offset = excluded.recipient_offset
        WHERE notice_body.recipient_offset IS NULL AND excluded.recipient_offset IS NOT NULL
        """

    /// SQLite migration v5: from one table `notice` (one row per notice and recipient, each
    /// with its JSON) to bodies and recipient rows, every row and its state kept. Each notice
    /// id's body is the JSON of its first row; every moved row keeps its own JSON, so nothing
    /// a user was shown changes. A moved row counts as seen if it was read or delivered (its
    /// user was shown it, or at least its pop-up): the badge's "unseen" starts from now.
    static let sqliteBodyOnce = """
        CREATE TABLE notice_body (
            notice_id INTEGER PRIMARY KEY,
            payload TEXT NOT NULL,
            recipient_offset INTEGER,
            created_at INTEGER NOT NULL,
            category TEXT,
            expires_at INTEGER,
            collapse_key TEXT,
            source_key TEXT,
            pushed INTEGER NOT NULL
        );
        CREATE TABLE notice_recipient (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            notice_id INTEGER NOT NULL,
            recipient TEXT NOT NULL,
            payload TEXT,
            category TEXT,
            pushed INTEGER NOT NULL,
            delivered_at INTEGER,
            seen_at INTEGER,
            read_at INTEGER,
            archived_at INTEGER,
            expires_at INTEGER,
            collapse_key TEXT,
            UNIQUE (notice_id, recipient)
        );
        INSERT INTO notice_body (notice_id, payload, recipient_offset, created_at, category, source_key, pushed)
            SELECT notice_id, payload, NULL, created_at, NULL, source_key, pushed FROM notice
            WHERE seq IN (SELECT MIN(seq) FROM notice GROUP BY notice_id);
        INSERT INTO notice_recipient (seq, notice_id, recipient, payload, category, pushed, delivered_at, seen_at, read_at)
            SELECT seq, notice_id, recipient, payload, NULL, pushed, delivered_at, COALESCE(read_at, delivered_at), read_at
            FROM notice ORDER BY seq;
        DROP TABLE notice;
        \(sharedIndexes.map { $0 + ";" }.joined(separator: "\n"))
        """

    /// The indexes of the body-once schema, the same on both stores. Each read names its
    /// index's condition, so that both planners can use the partial ones.
    static let sharedIndexes = [
        "CREATE INDEX notice_body_created_at ON notice_body (created_at)",
        "CREATE INDEX notice_body_source_key ON notice_body (source_key) WHERE source_key IS NOT NULL",
        // The list (newest first), and the archive.
        "CREATE INDEX notice_inbox ON notice_recipient (recipient, seq) WHERE archived_at IS NULL",
        "CREATE INDEX notice_archive ON notice_recipient (recipient, seq) WHERE archived_at IS NOT NULL",
        // Replay: most rows are delivered, so only the rest.
        "CREATE INDEX notice_undelivered ON notice_recipient (recipient, seq) WHERE delivered_at IS NULL AND pushed = true",
        // Counts, whole or per category: one index entry per counted row.
        // (expires_at is in them so that an expired row is skipped without reading the row.)
        "CREATE INDEX notice_unread ON notice_recipient (recipient, category, expires_at) WHERE read_at IS NULL AND archived_at IS NULL",
        "CREATE INDEX notice_unseen ON notice_recipient (recipient, category, expires_at) WHERE seen_at IS NULL AND archived_at IS NULL",
        // A newer notice with the same collapse key replaces the user's unread one.
        "CREATE INDEX notice_collapse ON notice_recipient (recipient, collapse_key) WHERE collapse_key IS NOT NULL AND read_at IS NULL",
    ]
}
