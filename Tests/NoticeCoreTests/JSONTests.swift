import Testing

@testable import NoticeCore

@Suite struct JSONTests {
    @Test func keepsKeyOrderAndNumberText() throws {
        let text = #"{"z":1,"a":12345678901234567890,"m":-0.5e+10,"s":"\u00e9\ud83d\ude00","n":null,"t":[true,false,{}]}"#
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(value.serialized == #"{"z":1,"a":12345678901234567890,"m":-0.5e+10,"s":"é😀","n":null,"t":[true,false,{}]}"#)
    }

    @Test func escapesControlCharactersAndQuotes() throws {
        let value = JSONValue.string("a\"b\\c\n\u{01}</script>")
        #expect(value.serialized == #""a\"b\\c\n\u0001</script>""#)
        #expect(try JSONParser.parse(Array(value.serialized.utf8)) == value)
    }

    @Test(arguments: [
        "", "{", "{\"a\":}", "[1,]", "{\"a\":1,}", "01", "1.", "-", "tru", "\"\\x\"", "\"a\nb\"", "{} {}", "nul",
        "{\"a\":1,\"a\":2}", "\"\\ud800\"", "\"\\udc00x\"", "NaN", "'a'",
    ])
    func rejectsInvalidDocuments(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) }
    }

    @Test func limitsNesting() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(deep.utf8)) }
        let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect((try? JSONParser.parse(Array(fine.utf8))) != nil)
    }

    @Test func replaceKeepsPosition() {
        var object = JSONObject([("a", .number("1")), ("userIds", .array([])), ("b", .null)])
        object.replace("userIds", with: "userId", value: .string("7"))
        #expect(object.keys == ["a", "userId", "b"])
        object.replace("a", with: "a", value: .string("x"))
        #expect(object.keys == ["a", "userId", "b"])
        #expect(object["a"] == .string("x"))
        object.replace("missing", with: "c", value: .bool(true))
        #expect(object.keys == ["a", "userId", "b", "c"])
    }
}
