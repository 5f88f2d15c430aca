import Testing

@testable import STOMP

@Suite struct StompDecoderTests {
    private func decodeAll(_ text: String, version: StompVersion? = .v1_2, limits: StompDecoder.Limits = .init()) throws -> [StompDecoder.Output] {
        try decodeAll(Array(text.utf8), version: version, limits: limits)
    }

    private func decodeAll(_ bytes: [UInt8], version: StompVersion? = .v1_2, limits: StompDecoder.Limits = .init()) throws -> [StompDecoder.Output] {
        var decoder = StompDecoder(version: version, limits: limits)
        decoder.append(bytes)
        var outputs: [StompDecoder.Output] = []
        while let output = try decoder.next() { outputs.append(output) }
        return outputs
    }

    private func asFrame(_ output: StompDecoder.Output?) -> StompFrame? {
        if case .frame(let frame)? = output { return frame }
        return nil
    }

    @Test func decodesASimpleFrame() throws {
        let outputs = try decodeAll("SEND\ndestination:/queue/a\n\nhello\0")
        let frame = try #require(asFrame(outputs.first))
        #expect(frame.command == .send)
        #expect(frame.headers["destination"] == "/queue/a")
        #expect(frame.bodyText == "hello")
        #expect(outputs.count == 1)
    }

    @Test func leadingAndTrailingEOLsAreHeartBeats() throws {
        let outputs = try decodeAll("\n\r\nSEND\n\n\0\n\n")
        #expect(outputs == [.heartBeat, .heartBeat, .frame(StompFrame(.send)), .heartBeat, .heartBeat])
    }

    @Test func acceptsCRLFLineEnds() throws {
        let outputs = try decodeAll("SUBSCRIBE\r\nid:0\r\ndestination:/topic/notice\r\n\r\n\0")
        let frame = try #require(asFrame(outputs.first))
        #expect(frame.headers["id"] == "0")
        #expect(frame.headers["destination"] == "/topic/notice")
    }

    @Test func unescapesEveryVersion12Escape() throws {
        let outputs = try decodeAll("MESSAGE\na\\cb:c\\\\d\\ne\\rf\n\n\0", version: .v1_2)
        let frame = try #require(asFrame(outputs.first))
        #expect(frame.headers["a:b"] == "c\\d\ne\rf")
    }

    @Test func version11HasNoCarriageReturnEscape() throws {
        #expect(throws: StompError.invalidEscape) { try decodeAll("SEND\na:\\r\n\n\0", version: .v1_1) }
        let frame = try #require(asFrame(try decodeAll("SEND\na:\\n\\c\\\\\n\n\0", version: .v1_1).first))
        #expect(frame.headers["a"] == "\n:\\")
    }

    @Test func version10DoesNotUnescape() throws {
        let frame = try #require(asFrame(try decodeAll("SEND\na:x\\ny\n\n\0", version: .v1_0).first))
        #expect(frame.headers["a"] == "x\\ny")
    }

    @Test func connectHeadersAreNeverUnescaped() throws {
        let frame = try #require(asFrame(try decodeAll("CONNECT\nlogin:a\\b\n\n\0", version: .v1_2).first))
        #expect(frame.headers["login"] == "a\\b")
    }

    @Test func unknownEscapeIsAnError() {
        #expect(throws: StompError.invalidEscape) { try decodeAll("SEND\na:\\t\n\n\0") }
        #expect(throws: StompError.invalidEscape) { try decodeAll("SEND\na:x\\\n\n\0") }
    }

    @Test func repeatedHeadersKeepTheFirst() throws {
        let frame = try #require(asFrame(try decodeAll("SEND\nfoo:1\nfoo:2\n\n\0").first))
        #expect(frame.headers["foo"] == "1")
        #expect(frame.headers.count == 2)
    }

    @Test func contentLengthAllowsNULsInTheBody() throws {
        var bytes = Array("SEND\ncontent-length:5\n\n".utf8)
        bytes += [0x61, 0, 0x62, 0, 0x63, 0]
        bytes += Array("SEND\n\n\0".utf8)
        let outputs = try decodeAll(bytes)
        #expect(asFrame(outputs.first)?.body == [0x61, 0, 0x62, 0, 0x63])
        #expect(asFrame(outputs.last)?.command == .send)
        #expect(outputs.count == 2)
    }

    @Test func contentLengthMustBeFollowedByNUL() {
        #expect(throws: StompError.missingNulTerminator) { try decodeAll("SEND\ncontent-length:2\n\nabc\0") }
    }

    @Test func contentLengthMustBeANumber() {
        #expect(throws: StompError.invalidContentLength) { try decodeAll("SEND\ncontent-length:x\n\n\0") }
        #expect(throws: StompError.invalidContentLength) { try decodeAll("SEND\ncontent-length:-1\n\n\0") }
        #expect(throws: StompError.invalidContentLength) { try decodeAll("SEND\ncontent-length:\n\n\0") }
    }

    @Test func unknownCommandIsAnError() {
        #expect(throws: StompError.unknownCommand) { try decodeAll("HELLO\n\n\0") }
        #expect(throws: StompError.unknownCommand) { try decodeAll("send\n\n\0") }
    }

    @Test func headerWithoutColonIsAnError() {
        #expect(throws: StompError.malformedHeader) { try decodeAll("SEND\nnocolon\n\n\0") }
        #expect(throws: StompError.malformedHeader) { try decodeAll("SEND\n:value\n\n\0") }
    }

    @Test func invalidUTF8InHeadersIsAnError() {
        var bytes = Array("SEND\na:".utf8)
        bytes += [0xFF, 0xFE]
        bytes += Array("\n\n\0".utf8)
        #expect(throws: StompError.invalidUTF8) { try decodeAll(bytes) }
        #expect(throws: StompError.invalidUTF8) { try decodeAll([0xC3, 0x28, 0x0A, 0x0A, 0x00]) }
    }

    @Test func bareCarriageReturnBetweenFramesIsAnError() {
        #expect(throws: StompError.malformedLineEnding) { try decodeAll("\rSEND\n\n\0") }
    }

    @Test func frameLargerThanTheLimitIsRefusedBeforeItEnds() {
        let limits = StompDecoder.Limits(maxFrameBytes: 100, maxHeaders: 64)
        var decoder = StompDecoder(version: .v1_2, limits: limits)
        decoder.append(Array("SEND\n\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 200))
        #expect(throws: StompError.frameTooLarge(limit: 100)) { try decoder.next() }
        #expect(throws: StompError.frameTooLarge(limit: 100)) {
            try decodeAll("SEND\ncontent-length:1000\n\n", limits: limits)
        }
        #expect(throws: StompError.frameTooLarge(limit: 100)) {
            try decodeAll("SEND\n\(String(repeating: "h", count: 150)):1\n\n\0", limits: limits)
        }
    }

    @Test func tooManyHeadersIsAnError() {
        let headers = (0..<65).map { "h\($0):v\n" }.joined()
        #expect(throws: StompError.tooManyHeaders(limit: 64)) { try decodeAll("SEND\n\(headers)\n\0") }
        let fine = (0..<64).map { "h\($0):v\n" }.joined()
        #expect((try? decodeAll("SEND\n\(fine)\n\0"))?.count == 1)
    }

    @Test func framesSplitAtEveryByteDecodeTheSame() throws {
        let text =
            "\nCONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0SEND\ncontent-length:3\ndestination:/a\\cb\n\nx\0y\0\r\nSUBSCRIBE\r\nid:1\r\n\r\n\0"
        let whole = try decodeAll(text)
        var decoder = StompDecoder(version: .v1_2)
        var pieces: [StompDecoder.Output] = []
        for byte in text.utf8 {
            decoder.append([byte])
            while let output = try decoder.next() { pieces.append(output) }
        }
        #expect(pieces == whole)
        #expect(whole.count == 5)
        #expect(asFrame(whole[2])?.headers["destination"] == "/a:b")
        #expect(asFrame(whole[2])?.body == [UInt8(ascii: "x"), 0, UInt8(ascii: "y")])
    }

    @Test func manyFramesPackedInOneMessage() throws {
        let text = String(repeating: "SEND\ndestination:/app/x\n\nping\0", count: 500)
        let outputs = try decodeAll(text)
        #expect(outputs.count == 500)
        #expect(outputs.allSatisfy { asFrame($0)?.bodyText == "ping" })
    }

    @Test func partialInputIsNotAnError() throws {
        var decoder = StompDecoder(version: .v1_2)
        decoder.append(Array("SEN".utf8))
        #expect(try decoder.next() == nil)
        decoder.append(Array("D\nfoo:b".utf8))
        #expect(try decoder.next() == nil)
        decoder.append(Array("ar\n\nbody".utf8))
        #expect(try decoder.next() == nil)
        decoder.append([0])
        #expect(asFrame(try decoder.next())?.headers["foo"] == "bar")
        #expect(decoder.bufferedBytes == 0)
    }
}
