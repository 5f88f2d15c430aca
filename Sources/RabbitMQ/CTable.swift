internal import CRabbitMQ

/// Owns C memory handed to rabbitmq-c for one call (tables, strings), freed on deinit.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for pointer in allocations { pointer.deallocate() }
    }

    func bytes(_ bytes: [UInt8]) -> amqp_bytes_t {
        guard !bytes.isEmpty else { return amqp_bytes_t(len: 0, bytes: nil) }
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 1)
        allocations.append(pointer)
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return amqp_bytes_t(len: bytes.count, bytes: pointer)
    }

    func bytes(_ text: String) -> amqp_bytes_t { bytes(Array(text.utf8)) }

    func cString(_ text: String) -> UnsafePointer<CChar> {
        let utf8 = Array(text.utf8CString)
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: utf8.count, alignment: 1)
        allocations.append(pointer)
        utf8.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: utf8.count) }
        return UnsafePointer(pointer.assumingMemoryBound(to: CChar.self))
    }

    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.entries.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: table.entries.count)
        allocations.append(UnsafeMutableRawPointer(entries))
        for (index, entry) in table.entries.enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(entry.key), value: field(entry.value))
        }
        return amqp_table_t(num_entries: Int32(table.entries.count), entries: entries)
    }

    func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .bool(let flag):
            field.kind = kind("t")
            field.value.boolean = flag ? 1 : 0
        case .int8(let number):
            field.kind = kind("b")
            field.value.i8 = number
        case .uint8(let number):
            field.kind = kind("B")
            field.value.u8 = number
        case .int16(let number):
            field.kind = kind("s")
            field.value.i16 = number
        case .uint16(let number):
            field.kind = kind("u")
            field.value.u16 = number
        case .int32(let number):
            field.kind = kind("I")
            field.value.i32 = number
        case .uint32(let number):
            field.kind = kind("i")
            field.value.u32 = number
        case .int64(let number):
            field.kind = kind("l")
            field.value.i64 = number
        case .uint64(let number):
            field.kind = kind("L")
            field.value.u64 = number
        case .float(let number):
            field.kind = kind("f")
            field.value.f32 = number
        case .double(let number):
            field.kind = kind("d")
            field.value.f64 = number
        case .decimal(let scale, let number):
            field.kind = kind("D")
            field.value.decimal = amqp_decimal_t(decimals: scale, value: number)
        case .string(let text):
            field.kind = kind("S")
            field.value.bytes = bytes(text)
        case .bytes(let data):
            field.kind = kind("x")
            field.value.bytes = bytes(data)
        case .timestamp(let time):
            field.kind = kind("T")
            field.value.u64 = time
        case .table(let nested):
            field.kind = kind("F")
            field.value.table = table(nested)
        case .void: field.kind = kind("V")
        case .array(let values):
            field.kind = kind("A")
            let entries = UnsafeMutablePointer<amqp_field_value_t>.allocate(capacity: max(values.count, 1))
            allocations.append(UnsafeMutableRawPointer(entries))
            for (index, element) in values.enumerated() { entries[index] = self.field(element) }
            field.value.array = amqp_array_t(num_entries: Int32(values.count), entries: values.isEmpty ? nil : entries)
        }
        return field
    }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var result = amqp_basic_properties_t()
        var flags: UInt32 = 0
        func text(_ value: String?, _ flag: UInt32) -> amqp_bytes_t {
            guard let value else { return amqp_bytes_t(len: 0, bytes: nil) }
            flags |= flag
            return bytes(value)
        }
        result.content_type = text(properties.contentType, PropertyFlag.contentType)
        result.content_encoding = text(properties.contentEncoding, PropertyFlag.contentEncoding)
        if let headers = properties.headers {
            flags |= PropertyFlag.headers
            result.headers = table(headers)
        }
        if let mode = properties.deliveryMode {
            flags |= PropertyFlag.deliveryMode
            result.delivery_mode = mode
        }
        if let priority = properties.priority {
            flags |= PropertyFlag.priority
            result.priority = priority
        }
        result.correlation_id = text(properties.correlationId, PropertyFlag.correlationId)
        result.reply_to = text(properties.replyTo, PropertyFlag.replyTo)
        result.expiration = text(properties.expiration, PropertyFlag.expiration)
        result.message_id = text(properties.messageId, PropertyFlag.messageId)
        if let timestamp = properties.timestamp {
            flags |= PropertyFlag.timestamp
            result.timestamp = timestamp
        }
        result.type = text(properties.type, PropertyFlag.type)
        result.user_id = text(properties.userId, PropertyFlag.userId)
        result.app_id = text(properties.appId, PropertyFlag.appId)
        result._flags = flags
        return result
    }

    private func kind(_ character: Unicode.Scalar) -> UInt8 { UInt8(character.value) }
}

/// `amqp_basic_properties_t._flags` bits (AMQP 0-9-1 basic class property order).
enum PropertyFlag {
    static let contentType: UInt32 = 1 << 15
    static let contentEncoding: UInt32 = 1 << 14
    static let headers: UInt32 = 1 << 13
    static let deliveryMode: UInt32 = 1 << 12
    static let priority: UInt32 = 1 << 11
    static let correlationId: UInt32 = 1 << 10
    static let replyTo: UInt32 = 1 << 9
    static let expiration: UInt32 = 1 << 8
    static let messageId: UInt32 = 1 << 7
    static let timestamp: UInt32 = 1 << 6
    static let type: UInt32 = 1 << 5
    static let userId: UInt32 = 1 << 4
    static let appId: UInt32 = 1 << 3
}

extension Array where Element == UInt8 {
    init(_ bytes: amqp_bytes_t) {
        guard bytes.len > 0, let base = bytes.bytes else {
            self = []
            return
        }
        self = Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }
}

extension String {
    init(_ bytes: amqp_bytes_t) {
        self = String(decoding: [UInt8](bytes), as: UTF8.self)
    }
}

extension AMQPFieldValue {
    init(_ field: amqp_field_value_t) {
        switch Unicode.Scalar(field.kind) {
        case "t": self = .bool(field.value.boolean != 0)
        case "b": self = .int8(field.value.i8)
        case "B": self = .uint8(field.value.u8)
        case "s": self = .int16(field.value.i16)
        case "u": self = .uint16(field.value.u16)
        case "I": self = .int32(field.value.i32)
        case "i": self = .uint32(field.value.u32)
        case "l": self = .int64(field.value.i64)
        case "L": self = .uint64(field.value.u64)
        case "f": self = .float(field.value.f32)
        case "d": self = .double(field.value.f64)
        case "D": self = .decimal(scale: field.value.decimal.decimals, value: field.value.decimal.value)
        case "S": self = .string([UInt8](field.value.bytes))
        case "x": self = .bytes([UInt8](field.value.bytes))
        case "T": self = .timestamp(field.value.u64)
        case "F": self = .table(AMQPTable(field.value.table))
        case "A":
            let array = field.value.array
            self = .array((0..<Int(array.num_entries)).map { AMQPFieldValue(array.entries[$0]) })
        default: self = .void
        }
    }
}

extension AMQPTable {
    init(_ table: amqp_table_t) {
        self.init(
            (0..<Int(table.num_entries)).map {
                Entry(key: String(table.entries[$0].key), value: AMQPFieldValue(table.entries[$0].value))
            }
        )
    }
}

extension AMQPProperties {
    init(_ properties: amqp_basic_properties_t) {
        let flags = properties._flags
        func text(_ bytes: amqp_bytes_t, _ flag: UInt32) -> String? {
            flags & flag != 0 ? String(bytes) : nil
        }
        self.init(
            contentType: text(properties.content_type, PropertyFlag.contentType),
            contentEncoding: text(properties.content_encoding, PropertyFlag.contentEncoding),
            headers: flags & PropertyFlag.headers != 0 ? AMQPTable(properties.headers) : nil,
            deliveryMode: flags & PropertyFlag.deliveryMode != 0 ? properties.delivery_mode : nil,
            priority: flags & PropertyFlag.priority != 0 ? properties.priority : nil,
            correlationId: text(properties.correlation_id, PropertyFlag.correlationId),
            replyTo: text(properties.reply_to, PropertyFlag.replyTo),
            expiration: text(properties.expiration, PropertyFlag.expiration),
            messageId: text(properties.message_id, PropertyFlag.messageId),
            timestamp: flags & PropertyFlag.timestamp != 0 ? properties.timestamp : nil,
            type: text(properties.type, PropertyFlag.type),
            userId: text(properties.user_id, PropertyFlag.userId),
            appId: text(properties.app_id, PropertyFlag.appId)
        )
    }
}
