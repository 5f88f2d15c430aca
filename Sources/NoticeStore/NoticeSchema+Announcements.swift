import NoticeCore

/// Announcements (docs/inbox.md): a broadcast is stored once, as one recipient row `''`, and
/// is in every user's inbox from its place in the list on. What a user did with it lives apart
/// and only once they did something:
///
/// - `notice_announcement_state` (recipient, notice id): seen, read, archived, deleted — a
///   row appears with a user's first change; without one the announcement is unseen and unread.
///   `deleted_at` is a tombstone: the announcement is out of that user's inbox.
/// - `notice_announcement_delivered` (recipient): the `seq` of the newest announcement
///   delivered to the user (written to a session of theirs, or ACKed), so that replay sends
///   them the later ones. One row per user, not one per user and announcement.
///
/// A user's own row of the same notice id (a later message that named the user) takes the
/// announcement's place: the announcement is not listed twice.
///
/// Every statement here reads the broadcast rows as `r` (with `b`, the body, and `s`, the
/// user's state) and names the user as `user`, a parameter placeholder of the caller's.
extension NoticeSchema {
    /// The tables, the same on both stores.
    static func announcementTables(_ dialect: Dialect) -> [String] {
        let integer = dialect.integer
        return [
            """
            CREATE TABLE notice_announcement_state (
                recipient TEXT NOT NULL,
                notice_id \(integer) NOT NULL,
                seen_at \(integer),
                read_at \(integer),
                archived_at \(integer),
                deleted_at \(integer),
                PRIMARY KEY (recipient, notice_id)
            )
            """,
            // A recall, retention and the receipts find an announcement's states by its id.
            "CREATE INDEX notice_announcement_state_notice ON notice_announcement_state (notice_id)",
            """
            CREATE TABLE notice_announcement_delivered (
                recipient TEXT PRIMARY KEY,
                seq \(integer) NOT NULL,
                delivered_at \(integer) NOT NULL
            )
            """,
            // The receipts' "delivered" (users past an announcement) and retention.
            "CREATE INDEX notice_announcement_delivered_seq ON notice_announcement_delivered (seq)",
            "CREATE INDEX notice_announcement_delivered_at ON notice_announcement_delivered (delivered_at)",
        ]
    }

    /// How far back replay reaches for a user whom no announcement was ever delivered to (or
    /// whose mark retention purged): the announcements of the last day. Older ones are in their
    /// list and counts, not popped up.
    static let announcementReplayWindowMillis: Int64 = 24 * 60 * 60 * 1000

    /// ``columns`` for a broadcast row as `user` sees it: their state, no delivery time of its
    /// own (one mark per user, not per announcement).
    static func announcementColumns(user: String, _ dialect: Dialect, extra: String = "") -> String {
        """
        r.notice_id, r.recipient, COALESCE(r.payload, b.payload) AS payload,
        CASE WHEN r.payload IS NULL THEN b.recipient_offset END AS recipient_offset,
        b.created_at, r.category, r.pushed, CAST(NULL AS \(dialect.integer)) AS delivered_at,
        s.seen_at, s.read_at, s.archived_at, r.expires_at, r.collapse_key\(extra)
        \(bodyJoin)
        LEFT JOIN notice_announcement_state s ON s.recipient = \(user) AND s.notice_id = r.notice_id
        """
    }

    /// The broadcast rows in `user`'s inbox: not deleted by them, and no row of their own for
    /// that notice. (`archived_at IS NULL` is always true of a broadcast row; it lets the
    /// planners walk the `notice_inbox` index.)
    static func announced(user: String) -> String {
        """
        r.recipient = '' AND r.archived_at IS NULL AND s.deleted_at IS NULL \
        AND NOT EXISTS (SELECT 1 FROM notice_recipient o WHERE o.notice_id = r.notice_id AND o.recipient = \(user))
        """
    }

    /// A user's own rows and their announcements in one list, newest first (by `seq`, the
    /// place each has had in every list since it was stored): at most `limit` of each, then
    /// of both. `own` and `announcement` are conditions (`AND …`) on `r` of each side.
    static func merged(own: String, announcement: String, user: String, limit: String, _ dialect: Dialect) -> String {
        """
        SELECT \(columnNames) FROM (
            SELECT * FROM (
                SELECT \(ownColumns), r.seq AS list_seq \(bodyJoin)
                WHERE r.recipient = \(user) \(own) ORDER BY r.seq DESC LIMIT \(limit)
            ) own_rows
            UNION ALL
            SELECT * FROM (
                SELECT \(announcementColumns(user: user, dialect, extra: ", r.seq AS list_seq"))
                WHERE \(announced(user: user)) \(announcement) ORDER BY r.seq DESC LIMIT \(limit)
            ) announcement_rows
        ) listed ORDER BY list_seq DESC LIMIT \(limit)
        """
    }

    /// Replay (``NoticeStore/undelivered(userId:limit:)``): the user's own undelivered pushed
    /// rows and their announcements not yet delivered, the newest `limit`. Parameters: the user,
    /// the limit, the store's clock and ``announcementReplaySince(_:)`` of it — the same text on
    /// every call (SQLite keeps it prepared: a reconnect storm is a replay per SUBSCRIBE).
    static func replaySQL(_ dialect: Dialect) -> String {
        let p = dialect.parameter
        return merged(
            own: "AND r.delivered_at IS NULL AND r.pushed = true AND \(live(p(3)))",
            announcement: announcementReplay(user: p(1), now: p(3), since: p(4)),
            user: p(1),
            limit: p(2),
            dialect
        )
    }

    /// The oldest announcement time replayed to a user with no announcement mark.
    static func announcementReplaySince(_ now: Int64) -> Int64 { now - announcementReplayWindowMillis }

    /// A page of the list (``NoticeStore/notices(_:)``): parameters the user, the cursor's
    /// list position (`Int64.max`: none), the limit, the store's clock, and the category when
    /// the query has one (the text depends on the query's options only: kept prepared).
    static func listSQL(_ query: NoticeQuery, _ dialect: Dialect) -> String {
        let p = dialect.parameter
        var own = "AND r.seq < \(p(2)) AND \(live(p(4)))"
        var announcement = own
        own += query.archived ? " AND r.archived_at IS NOT NULL" : " AND r.archived_at IS NULL"
        announcement += query.archived ? " AND s.archived_at IS NOT NULL" : " AND s.archived_at IS NULL"
        if query.unreadOnly {
            own += " AND r.read_at IS NULL"
            announcement += " AND s.read_at IS NULL"
        }
        if query.category != nil {
            own += " AND r.category = \(p(5))"
            announcement += " AND r.category = \(p(5))"
        }
        return merged(own: own, announcement: announcement, user: p(1), limit: p(3), dialect)
    }

    /// The replay's condition on the announcement side (see ``merged(own:announcement:user:limit:_:)``):
    /// pushed, live, not read or archived by the user, and after the newest one delivered to
    /// them — or, with none, of the last ``announcementReplayWindowMillis`` (from `since`).
    static func announcementReplay(user: String, now: String, since: String) -> String {
        let mark = "SELECT seq FROM notice_announcement_delivered WHERE recipient = \(user)"
        return """
            AND r.pushed = true AND \(live(now)) AND s.read_at IS NULL AND s.archived_at IS NULL \
            AND r.seq > COALESCE((\(mark)), 0) \
            AND (b.created_at >= \(since) OR EXISTS (\(mark)))
            """
    }

    /// Counts the live announcements whose `state` (`read_at`, `seen_at`) `user` has not set
    /// and that they neither archived nor deleted, at most `limit` (parameters as
    /// ``countSQL(_:byCategory:_:now:)``'s). It walks the broadcast rows (`notice_inbox`), so
    /// it reads the ones the user has acted on, and then at most `limit` more.
    static func announcementCountSQL(_ state: String, byCategory: Bool, _ dialect: Dialect, now: String) -> String {
        let user = dialect.parameter(1)
        let category = byCategory ? "AND r.category = \(dialect.parameter(2))" : ""
        let index = dialect == .sqlite ? "INDEXED BY notice_inbox" : ""
        return """
            SELECT count(*) FROM (SELECT 1 FROM notice_recipient r \(index) WHERE r.recipient = '' AND r.archived_at IS NULL \(category) \
            AND \(live(now)) \
            AND NOT EXISTS (SELECT 1 FROM notice_announcement_state s WHERE s.recipient = \(user) AND s.notice_id = r.notice_id \
            AND (s.\(state) IS NOT NULL OR s.archived_at IS NOT NULL OR s.deleted_at IS NOT NULL)) \
            AND NOT EXISTS (SELECT 1 FROM notice_recipient o WHERE o.notice_id = r.notice_id AND o.recipient = \(user)) \
            LIMIT \(dialect.parameter(byCategory ? 3 : 2))) counted
            """
    }

    /// Both counts in one statement (``NoticeStore/counts(userId:category:cap:)``): unread and
    /// unseen, each the user's own rows and their announcements, at most the limit. Parameters
    /// as ``countSQL(_:byCategory:_:now:)``'s, then the store's clock: the text is the same on
    /// every call (SQLite keeps it prepared).
    static func countsSQL(byCategory: Bool, _ dialect: Dialect) -> String {
        let limit = dialect.parameter(byCategory ? 3 : 2)
        let now = dialect.parameter(byCategory ? 4 : 3)
        let least = dialect == .sqlite ? "min" : "LEAST"
        func count(_ state: String) -> String {
            """
            \(least)((\(countSQL(state, byCategory: byCategory, dialect, now: now))) \
            + (\(announcementCountSQL(state, byCategory: byCategory, dialect, now: now))), \(limit))
            """
        }
        return "SELECT \(count("read_at")), \(count("seen_at"))"
    }

    /// The announcement side of an inbox command: `selection` (`AND …` on `r`, the broadcast
    /// rows) picks the announcements; a change that sets a state makes the user's state row if
    /// there is none. Only changes count (`changesCount`, `RETURNING`): a state already set, a
    /// deleted announcement, or clearing a state never set, changes nothing. `millis` is the
    /// service's clock, never client input.
    static func announcementChange(_ action: InboxAction, user: String, selection: String, at millis: Int64, _ dialect: Dialect) -> String {
        let now = String(millis)
        let none = "CAST(NULL AS \(dialect.integer))"
        // A user's own row of the notice takes the announcement's place; a delete removes both
        // (on PostgreSQL the two happen in one statement, which would still see the own row).
        let ownRowFirst =
            action == .delete ? "" : "AND NOT EXISTS (SELECT 1 FROM notice_recipient o WHERE o.notice_id = r.notice_id AND o.recipient = \(user))"
        let target = "r.recipient = '' AND r.archived_at IS NULL AND \(live(millis)) \(selection) \(ownRowFirst)"
        let table = "notice_announcement_state"
        /// A state set: (seen, read, archived, deleted) for a new row, `set` for an existing one.
        func upsert(_ initial: [String], set: String, unset: String) -> String {
            """
            INSERT INTO \(table) (recipient, notice_id, seen_at, read_at, archived_at, deleted_at)
            SELECT \(user), r.notice_id, \(initial.joined(separator: ", ")) FROM notice_recipient r WHERE \(target)
            ON CONFLICT (recipient, notice_id) DO UPDATE SET \(set) WHERE \(table).deleted_at IS NULL AND \(table).\(unset) IS NULL
            """
        }
        /// A state cleared: only rows that have it.
        func clear(_ column: String) -> String {
            """
            UPDATE \(table) SET \(column) = NULL WHERE recipient = \(user) AND deleted_at IS NULL AND \(column) IS NOT NULL
            AND notice_id IN (SELECT r.notice_id FROM notice_recipient r WHERE \(target))
            """
        }
        switch action {
        case .read:
            return upsert([now, now, none, none], set: "read_at = \(now), seen_at = COALESCE(\(table).seen_at, \(now))", unset: "read_at")
        case .seen:
            return upsert([now, none, none, none], set: "seen_at = \(now)", unset: "seen_at")
        case .archive:
            return upsert([none, none, now, none], set: "archived_at = \(now)", unset: "archived_at")
        case .delete:
            return upsert([none, none, none, now], set: "deleted_at = \(now)", unset: "deleted_at")
        case .unread:
            return clear("read_at")
        case .unarchive:
            return clear("archived_at")
        }
    }

    /// The seq of notice `id` as `user`'s list places it: their own row's, else the
    /// announcement's (parameters: the id, then the user).
    static func listPosition(_ dialect: Dialect) -> String {
        """
        SELECT seq FROM notice_recipient WHERE notice_id = \(dialect.parameter(1)) AND (recipient = \(dialect.parameter(2)) OR recipient = '')
        ORDER BY recipient DESC LIMIT 1
        """
    }

    /// SQLite: marks an announcement delivered to a user (parameters: the user, the time, the
    /// notice id): their mark moves on to it, never back.
    static let sqliteAnnouncementDelivered = """
        INSERT INTO notice_announcement_delivered (recipient, seq, delivered_at)
        SELECT ?1, seq, ?2 FROM notice_recipient WHERE notice_id = ?3 AND recipient = ''
        ON CONFLICT (recipient) DO UPDATE SET seq = excluded.seq, delivered_at = excluded.delivered_at
        WHERE excluded.seq > notice_announcement_delivered.seq
        """

    /// How many users' announcement marks have passed the announcement at `seq`.
    static func announcementDeliveredCount(_ seq: String) -> String {
        "SELECT count(*) FROM notice_announcement_delivered WHERE seq >= \(seq)"
    }

    /// An announcement's users with a state of it, and how many of them saw and read it.
    static func announcementStateTotals(_ noticeId: String) -> String {
        "SELECT count(*), count(seen_at), count(read_at) FROM notice_announcement_state WHERE notice_id = \(noticeId)"
    }

    /// Deletes at most `limit` announcement marks last moved before `before`: their users are
    /// replayed the last day's announcements, as one never delivered any.
    static func purgeAnnouncementMarks(_ before: String, _ limit: String) -> String {
        """
        DELETE FROM notice_announcement_delivered WHERE recipient IN
        (SELECT recipient FROM notice_announcement_delivered WHERE delivered_at < \(before) LIMIT \(limit))
        """
    }
}
