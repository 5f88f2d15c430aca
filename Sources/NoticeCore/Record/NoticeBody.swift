/// A notice's JSON as stored once for all of its recipients (SPEC §6): the text a browser
/// receives, with the recipient's id left out of its `userId` and the place it goes.
///
/// A multicast to 5,000 users is one body and 5,000 small recipient rows; the JSON each user
/// receives is the body with that user's id spliced in (``payload(for:)``), byte for byte the
/// text ``NoticeRecord/payload(for:createdAt:)`` writes.
public struct NoticeBody: Sendable, Hashable {
    /// The JSON text; with a ``recipientOffset``, its `userId` is the empty string.
    public var template: String
    /// The UTF-8 offset in ``template`` between the quotes of `"userId":""`, where a
    /// recipient's id goes (JSON-escaped); `nil` when the text is sent as it is (a broadcast,
    /// or a payload stored for one recipient before bodies were shared).
    public var recipientOffset: Int?

    /// A body sent as it is to whoever it is for.
    public init(verbatim text: String) {
        template = text
        recipientOffset = nil
    }

    /// A body with a recipient slot; an offset outside `template` (a corrupt row) is ignored.
    public init(template: String, recipientOffset: Int?) {
        self.template = template
        if let recipientOffset, recipientOffset >= 0, recipientOffset <= template.utf8.count {
            self.recipientOffset = recipientOffset
        } else {
            self.recipientOffset = nil
        }
    }

    /// The JSON `recipient` receives (`nil`: a broadcast, the template as it is).
    public func payload(for recipient: String?) -> String {
        guard let recipientOffset, let recipient, !recipient.isEmpty else { return template }
        let bytes = template.utf8
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + recipient.utf8.count + 8)
        let split = bytes.index(bytes.startIndex, offsetBy: recipientOffset)
        out.append(contentsOf: bytes[..<split])
        JSONValue.writeStringContent(recipient, into: &out)
        out.append(contentsOf: bytes[split...])
        return String(decoding: out, as: UTF8.self)
    }
}

extension NoticeRecord {
    /// The body every recipient of this record shares: ``payload(for:createdAt:)`` with the
    /// recipient's id left for ``NoticeBody/payload(for:)`` to fill in (a broadcast has none).
    public func body(createdAt: String) -> NoticeBody {
        var object = fields
        object.replace("id", with: "id", value: .string(String(id)))
        if case .users = audience {
            if object["userIds"] != nil {
                object.replace("userIds", with: "userId", value: .string(""))
            } else {
                object.replace("userId", with: "userId", value: .string(""))
            }
        }
        object["createdAt"] = nil
        object["createdAt"] = .string(createdAt)
        guard case .users = audience else { return NoticeBody(verbatim: JSONValue.object(object).serialized) }
        var out: [UInt8] = [UInt8(ascii: "{")]
        var offset: Int?
        for (index, member) in object.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.writeString(member.key, into: &out)
            out.append(UInt8(ascii: ":"))
            if member.key == "userId" {
                out.append(UInt8(ascii: "\""))
                offset = out.count
                out.append(UInt8(ascii: "\""))
            } else {
                member.value.write(into: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
        return NoticeBody(template: String(decoding: out, as: UTF8.self), recipientOffset: offset)
    }
}
