/// The headers of a STOMP frame, in wire order.
///
/// Repeated names are kept; lookups return the first, as STOMP 1.2 requires.
public struct StompHeaders: Sendable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    /// One header line.
    public struct Field: Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public private(set) var fields: [Field]

    public init() { self.fields = [] }

    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { Field(name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The value of the first header with this name.
    public subscript(name: String) -> String? {
        fields.first { $0.name == name }?.value
    }

    /// Appends a header line (does not replace an earlier one of the same name).
    public mutating func add(_ name: String, _ value: String) {
        fields.append(Field(name: name, value: value))
    }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }
}
