import Testing

@testable import STOMP

@Suite struct StompEncoderTests {
    @Test func escapesHeadersPerVersion() {
        let frame = StompFrame(.message, headers: ["a:b": "c\\d\ne\rf"], body: Array("x".utf8))
        #expect(String(decoding: StompEncoder.encode(frame, version: .v1_2), as: UTF8.self) == "MESSAGE\na\\cb:c\\\\d\\ne\\rf\n\nx\0")
        #expect(String(decoding: StompEncoder.encode(frame, version: .v1_1), as: UTF8.self) == "MESSAGE\na\\cb:c\\\\d\\ne\rf\n\nx\0")
        #expect(String(decoding: StompEncoder.encode(frame, version: .v1_0), as: UTF8.self) == "MESSAGE\na:b:c\\d\ne\rf\n\nx\0")
        // A carriage return alone: escaped from 1.2 on only; plain text is copied as it is.
        let onlyCR = StompFrame(.message, headers: ["k": "e\rf", "plain": "/notice/1/remind"])
        #expect(String(decoding: StompEncoder.encode(onlyCR, version: .v1_2), as: UTF8.self) == "MESSAGE\nk:e\\rf\nplain:/notice/1/remind\n\n\0")
        #expect(String(decoding: StompEncoder.encode(onlyCR, version: .v1_1), as: UTF8.self) == "MESSAGE\nk:e\rf\nplain:/notice/1/remind\n\n\0")
    }

    @Test func connectedIsNotEscaped() {
        let frame = StompFrame(.connected, headers: ["server": "a:b"])
        #expect(String(decoding: StompEncoder.encode(frame, version: .v1_2), as: UTF8.self) == "CONNECTED\nserver:a:b\n\n\0")
    }

    @Test func roundTripsThroughTheDecoder() throws {
        let original = StompFrame(.message, headers: ["destination": "/notice/1/remind", "weird": "x:y\\z\nw"], body: [1, 0, 2])
            .withContentLength()
        for version in StompVersion.allCases where version != .v1_0 {
            var decoder = StompDecoder(version: version)
            decoder.append(StompEncoder.encode(original, version: version))
            #expect(try decoder.next() == .frame(original))
        }
    }

    @Test func contentLengthIsAddedOnce() {
        let frame = StompFrame(.error, body: Array("abc".utf8)).withContentLength().withContentLength()
        #expect(frame.headers.fields.filter { $0.name == "content-length" }.map(\.value) == ["3"])
    }
}

@Suite struct NegotiationTests {
    @Test func versionIsTheHighestOffered() {
        #expect(StompVersion.negotiate(acceptVersion: "1.0,1.1,1.2") == .v1_2)
        #expect(StompVersion.negotiate(acceptVersion: "1.1,1.0") == .v1_1)
        #expect(StompVersion.negotiate(acceptVersion: nil) == .v1_0)
        #expect(StompVersion.negotiate(acceptVersion: "2.0") == nil)
    }

    @Test func heartBeatsFollowTheSpec() throws {
        let server = HeartBeat(outgoing: 10_000, incoming: 10_000)
        #expect(HeartBeat.negotiate(client: try HeartBeat(header: "0,0"), server: server) == .init(serverSends: 0, clientSends: 0))
        #expect(HeartBeat.negotiate(client: try HeartBeat(header: "4000,20000"), server: server) == .init(serverSends: 20_000, clientSends: 10_000))
        #expect(HeartBeat.negotiate(client: try HeartBeat(header: "15000,0"), server: server) == .init(serverSends: 0, clientSends: 15_000))
        #expect(HeartBeat.negotiate(client: .none, server: server) == .init(serverSends: 0, clientSends: 0))
        #expect(throws: StompError.invalidHeartBeat) { try HeartBeat(header: "1,2,3") }
        #expect(throws: StompError.invalidHeartBeat) { try HeartBeat(header: "-1,0") }
        #expect(throws: StompError.invalidHeartBeat) { try HeartBeat(header: "x") }
        #expect(throws: StompError.invalidHeartBeat) { try HeartBeat(header: "+5,0") }
        #expect(throws: StompError.invalidHeartBeat) { try HeartBeat(header: ",") }
    }

    /// Any run of digits is bounded at the boundary: an agreed interval times two (the silence
    /// a server allows) cannot overflow, however large the client's numbers.
    @Test func hugeHeartBeatsAreBoundedToADay() throws {
        let server = HeartBeat(outgoing: 10_000, incoming: 10_000)
        for header in ["4611686018427387904,4611686018427387904", "9223372036854775807,9223372036854775807", "99999999999999999999999999,1"] {
            let client = try HeartBeat(header: header)
            #expect(client.outgoing <= HeartBeat.maxInterval && client.incoming <= HeartBeat.maxInterval, "\(header)")
            let agreement = HeartBeat.negotiate(client: client, server: server)
            #expect(agreement.clientSends == HeartBeat.maxInterval, "\(header)")
            #expect(agreement.clientSends.multipliedReportingOverflow(by: 2).overflow == false)
        }
        #expect(try HeartBeat(header: "86400001,0").outgoing == HeartBeat.maxInterval)
        #expect(try HeartBeat(header: "86400000,7").incoming == 7)
        // Values built in code are bounded when negotiated too.
        let wild = HeartBeat(outgoing: .max, incoming: .max)
        #expect(HeartBeat.negotiate(client: wild, server: wild) == .init(serverSends: HeartBeat.maxInterval, clientSends: HeartBeat.maxInterval))
    }
}
