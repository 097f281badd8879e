import Testing

@testable import Shared



/// Feeds `chunks` one after another and collects every result up to the first failure.
/// `.needMoreData` is not recorded; `.expectContinue` is recorded unless `dropContinue`.
private func parse(
    _ chunks: [[UInt8]],
    limits: HTTPParserLimits = HTTPParserLimits(),
    dropContinue: Bool = true
) -> [HTTPParseResult] {
    var parser = HTTPRequestParser(limits: limits)
    var results: [HTTPParseResult] = []
    for chunk in chunks {
        parser.append(chunk)
        draining: while true {
            let result = parser.next()
            switch result {
            case .needMoreData:
                break draining
            case .failure:
                results.append(result)
                return results
            case .expectContinue:
                if !dropContinue { results.append(result) }
            case .request:
                results.append(result)
            }
        }
    }
    return results
}

private func parse(_ text: String, limits: HTTPParserLimits = HTTPParserLimits()) -> [HTTPParseResult] {
    parse([Array(text.utf8)], limits: limits)
}

/// The single request `text` parses to, or nil.
private func request(_ text: String) -> HTTPRequest? {
    let results = parse(text)
    guard results.count == 1, case .request(let request) = results[0] else { return nil }
    return request
}

/// The failure `text` ends in, or nil.
private func failure(_ text: String, limits: HTTPParserLimits = HTTPParserLimits()) -> HTTPParseError? {
    guard case .failure(let error) = parse(text, limits: limits).last else { return nil }
    return error
}

/// Asserts that every two-piece split and the byte-by-byte feed give the same results as one piece.
private func expectSplitInvariant(
    _ text: String,
    limits: HTTPParserLimits = HTTPParserLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let bytes = Array(text.utf8)
    let whole = parse([bytes], limits: limits)
    for split in 0...bytes.count {
        let pieces = [Array(bytes[..<split]), Array(bytes[split...])]
        let results = parse(pieces, limits: limits)
        #expect(results == whole, "split at \(split)", sourceLocation: sourceLocation)
        if results != whole { return }
    }
    let byteByByte = parse(bytes.map { [$0] }, limits: limits)
    #expect(byteByByte == whole, "byte by byte", sourceLocation: sourceLocation)
}

private func requests(_ results: [HTTPParseResult]) -> [HTTPRequest] {
    results.compactMap {
        if case .request(let request) = $0 { return request }
        return nil
    }
}

@Suite struct HTTPRequestParserTests {
    @Test func simpleGet() throws {
        let parsed = try #require(
            request("GET /api/users?limit=10&q=a+b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Empty:\r\n\r\n")
        )
        #expect(parsed.method == .GET)
        #expect(parsed.target == "/api/users?limit=10&q=a+b")
        #expect(parsed.path == "/api/users")
        #expect(parsed.query == "limit=10&q=a+b")
        #expect(parsed.version == .http1_1)
        #expect(parsed.headers["host"] == "example.com")
        #expect(parsed.headers["ACCEPT"] == "*/*")
        #expect(parsed.headers["X-Empty"] == "")
        #expect(parsed.headers.count == 3)
        #expect(parsed.body.isEmpty)
        #expect(parsed.keepAlive)
        #expect(parsed.queryParameter("q") == "a b")
    }

    @Test func headerValuesAreTrimmedAndKeepInnerSpaces() throws {
        let parsed = try #require(request("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t one  two \t\r\n\r\n"))
        #expect(parsed.headers["x-a"] == "one  two")
    }

    @Test func unknownMethodIsAToken() throws {
        let parsed = try #require(request("PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(parsed.method.rawValue == "PURGE")
        #expect(failure("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n")?.code.name == "bad_request")
    }

    @Test func postBodyAtEverySplitPointAndByteByByte() throws {
        let text = "POST /api/messages HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
            + "Content-Length: 27\r\n\r\n{\"content\":\"hello, world\"}\n"
        let parsed = try #require(request(text))
        #expect(parsed.method == .POST)
        #expect(parsed.body == Array("{\"content\":\"hello, world\"}\n".utf8))
        expectSplitInvariant(text)
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let text = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            + "DELETE /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        let parsed = requests(parse(text))
        #expect(parsed.map(\.path) == ["/one", "/two", "/three"])
        #expect(parsed.map(\.method) == [.GET, .POST, .DELETE])
        #expect(parsed[1].body == Array("hello".utf8))
        #expect(parsed.map(\.keepAlive) == [true, true, false])
        expectSplitInvariant(text)

        // Random multi-way splits, reproducible.
        let bytes = Array(text.utf8)
        let whole = parse([bytes])
        var generator = SplitMix64(state: 42)
        for _ in 0..<300 {
            var cuts = (0..<Int.random(in: 1...8, using: &generator)).map { _ in
                Int.random(in: 0...bytes.count, using: &generator)
            }
            cuts.sort()
            var chunks: [[UInt8]] = []
            var start = 0
            for cut in cuts + [bytes.count] {
                chunks.append(Array(bytes[start..<cut]))
                start = cut
            }
            #expect(parse(chunks) == whole, "cuts \(cuts)")
        }
    }

    @Test func manyPipelinedRequestsKeepTheBufferBounded() {
        var parser = HTTPRequestParser()
        let one = Array("GET /x HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        var count = 0
        for _ in 0..<2000 {
            parser.append(one + one)
            while case .request = parser.next() { count += 1 }
            #expect(parser.bufferedByteCount == 0)
        }
        #expect(count == 4000)
        #expect(!parser.isMidRequest)
    }

    @Test(arguments: [
        ("HTTP/1.1", nil, true),
        ("HTTP/1.1", "close", false),
        ("HTTP/1.1", "Keep-Alive", true),
        ("HTTP/1.1", "keep-alive, CLOSE", false),
        ("HTTP/1.1", "Upgrade", true),
        ("HTTP/1.0", nil, false),
        ("HTTP/1.0", "keep-alive", true),
        ("HTTP/1.0", "Keep-Alive, foo", true),
        ("HTTP/1.0", "close", false),
    ] as [(String, String?, Bool)])
    func keepAliveRules(version: String, connection: String?, expected: Bool) throws {
        var text = "GET / \(version)\r\nHost: h\r\n"
        if let connection { text += "Connection: \(connection)\r\n" }
        let parsed = try #require(request(text + "\r\n"))
        #expect(parsed.keepAlive == expected)
        // The convenience initializer applies the same rule.
        let built = HTTPRequest(method: .GET, target: "/", version: parsed.version, headers: parsed.headers)
        #expect(built.keepAlive == expected)
    }

    @Test func chunkedBody() throws {
        let text = "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n6;name=value\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n"
            + "GET /after HTTP/1.1\r\nHost: h\r\n\r\n"
        let parsed = requests(parse(text))
        try #require(parsed.count == 2)
        #expect(parsed[0].body == Array("hello world0123456789".utf8))
        #expect(parsed[0].headers["X-Trailer"] == nil, "trailers are not merged into the headers")
        #expect(parsed[1].path == "/after")
        expectSplitInvariant(text)
    }

    @Test func chunkedWithBareLineFeeds() throws {
        let parsed = try #require(
            request("POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n")
        )
        #expect(parsed.body == Array("abc".utf8))
    }

    @Test func chunkedFramingErrors() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(failure(head + "zz\r\n")?.code.name == "bad_request")
        #expect(failure(head + "\r\n")?.code.name == "bad_request")
        #expect(failure(head + "3\r\nabcd\r\n")?.code.name == "bad_request", "data longer than size")
        #expect(failure(head + "3\r\nabc\rX")?.code.name == "bad_request")
        #expect(failure(head + "3;a\u{1}b\r\n")?.code.name == "bad_request")
        #expect(failure(head + "3 x\r\n")?.code.name == "bad_request")
        let longExtension = "1;" + String(repeating: "e", count: HTTPParserLimits.defaultMaxChunkLineBytes) + "\r\n"
        #expect(failure(head + longExtension)?.code.name == "bad_request")
        #expect(failure(head + "FFFFFFFFFFFFFFFFFFFFFFFF\r\n")?.code.name == "body_too_large")
    }

    @Test func requestLineLimit() {
        let limits = HTTPParserLimits(maxRequestLineBytes: 64)
        let exactly = "GET /" + String(repeating: "a", count: 64 - 14) + " HTTP/1.1"
        #expect(exactly.utf8.count == 64)
        #expect(request(exactly + "\r\nHost: h\r\n\r\n") != nil)
        #expect(parse(exactly + "\r\nHost: h\r\n\r\n", limits: limits).count == 1)
        let tooLong = "GET /" + String(repeating: "a", count: 65 - 14) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(failure(tooLong, limits: limits) == .uriTooLong(limit: 64))
        // Without a line end yet, the limit still applies to what has arrived.
        #expect(failure("GET /" + String(repeating: "a", count: 100), limits: limits)?.status.code == 414)
        expectSplitInvariant(tooLong, limits: limits)
        // Default limit.
        let huge = "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n"
        #expect(failure(huge)?.status == .uriTooLong)
    }

    @Test func headerBlockSizeLimit() {
        let limits = HTTPParserLimits(maxHeaderBytes: 100)
        // "Host: h\r\n" (9) + "X: <v>\r\n" + final "\r\n" (2).
        let fits = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 100 - 9 - 2 - 5) + "\r\n\r\n"
        #expect(parse(fits, limits: limits).count == 1)
        if case .request = parse(fits, limits: limits).first {} else { Issue.record("expected a request") }
        let over = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 100 - 9 - 2 - 4) + "\r\n\r\n"
        #expect(failure(over, limits: limits) == .headersTooLarge(limit: 100))
        #expect(failure(over, limits: limits)?.status.code == 431)
        expectSplitInvariant(over, limits: limits)
        // A header line that never ends.
        let endless = "GET / HTTP/1.1\r\nX: " + String(repeating: "v", count: 20_000)
        #expect(failure(endless)?.status.code == 431)
    }

    @Test func headerCountLimit() {
        let limits = HTTPParserLimits(maxHeaderCount: 5)
        let five = "GET / HTTP/1.1\r\nHost: h\r\n" + (1...4).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        if case .request(let parsed) = parse(five, limits: limits).first {
            #expect(parsed.headers.count == 5)
        } else {
            Issue.record("five fields should pass a limit of five")
        }
        let six = "GET / HTTP/1.1\r\nHost: h\r\n" + (1...5).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(failure(six, limits: limits) == .tooManyHeaders(limit: 5))
        #expect(failure(six, limits: limits)?.status.code == 431)
        #expect(failure(six, limits: limits)?.code.name == "headers_too_large")
        let manyDefault = "GET / HTTP/1.1\r\nHost: h\r\n" + (1...100).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(failure(manyDefault)?.status.code == 431)
    }

    @Test func bodyLimitFromContentLength() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
        // Refused from the head alone, before any body byte arrives.
        #expect(failure(head, limits: limits) == .bodyTooLarge(limit: 10))
        #expect(failure(head, limits: limits)?.status.code == 413)
        #expect(
            requests(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits)).count == 1
        )
        #expect(failure("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999999\r\n\r\n")?.status.code == 413)
        #expect(failure("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n")?.status.code == 413)
    }

    @Test func bodyLimitWhileDechunking() {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        let ok = head + "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"
        #expect(requests(parse(ok, limits: limits)).first?.body.count == 10)
        let over = head + "5\r\n01234\r\n6\r\n"
        #expect(failure(over, limits: limits) == .bodyTooLarge(limit: 10))
        expectSplitInvariant(over, limits: limits)
    }

    @Test func trailersCountAgainstHeaderLimits() {
        let limits = HTTPParserLimits(maxHeaderBytes: 64, maxHeaderCount: 3)
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        #expect(failure(head + "T: " + String(repeating: "t", count: 80) + "\r\n\r\n", limits: limits)?.status.code == 431)
        #expect(failure(head + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits: limits)?.status.code == 431)
        #expect(failure(head + " folded\r\n\r\n")?.code.name == "bad_request")
    }

    @Test func contentLengthAndTransferEncodingTogetherIsRejected() {
        let text = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        let error = failure(text)
        #expect(error?.status.code == 400)
        #expect(error?.message.contains("Content-Length and Transfer-Encoding") == true)
        let reversed = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        #expect(failure(reversed)?.status.code == 400)
    }

    @Test func transferEncodingRules() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\n"
        #expect(failure(head + "Transfer-Encoding: gzip, chunked\r\n\r\n") == .notImplemented("gzip"))
        #expect(failure(head + "Transfer-Encoding: gzip, chunked\r\n\r\n")?.status.code == 501)
        #expect(failure(head + "Transfer-Encoding: chunked, chunked\r\n\r\n")?.code.name == "bad_request")
        #expect(failure(head + "Transfer-Encoding: \r\n\r\n")?.code.name == "bad_request")
        #expect(failure(head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n")?.code.name == "bad_request")
        #expect(failure("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")?.code.name == "bad_request")
        let mixedCase = head + "Transfer-Encoding: ChUnKeD\r\n\r\n1\r\na\r\n0\r\n\r\n"
        #expect(requests(parse(mixedCase)).first?.body == [UInt8(ascii: "a")])
    }

    @Test(arguments: ["abc", "-1", "+5", "5 5", "0x10", "", "5,", "1.0"])
    func badContentLength(value: String) {
        let error = failure("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\n")
        #expect(error?.code.name == "bad_request", "Content-Length: \(value)")
    }

    @Test func duplicateContentLength() {
        let same = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
        #expect(requests(parse(same)).first?.body == Array("abc".utf8))
        let list = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc"
        #expect(requests(parse(list)).first?.body == Array("abc".utf8))
        let differing = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
        #expect(failure(differing)?.message.contains("conflicting Content-Length") == true)
        #expect(failure("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd")?.code.name == "bad_request")
    }

    @Test func headerSyntaxErrors() {
        let head = "GET / HTTP/1.1\r\nHost: h\r\n"
        #expect(failure(head + "X-A: one\r\n two\r\n\r\n")?.message.contains("folding") == true)
        #expect(failure(head + "X-A: one\r\n\ttwo\r\n\r\n")?.code.name == "bad_request")
        #expect(failure("GET / HTTP/1.1\r\n Host: h\r\n\r\n")?.code.name == "bad_request")
        #expect(failure(head + "X-A : one\r\n\r\n")?.message.contains("header name") == true)
        #expect(failure(head + "X-A\u{1}: one\r\n\r\n")?.code.name == "bad_request")
        #expect(failure(head + ": one\r\n\r\n")?.code.name == "bad_request")
        #expect(failure(head + "NoColon\r\n\r\n")?.code.name == "bad_request")
        #expect(failure(head + "X-A: on\u{0}e\r\n\r\n")?.message.contains("control character") == true)
        #expect(failure(head + "X-A: on\u{7F}e\r\n\r\n")?.code.name == "bad_request")
        #expect(failure(head + "X-A: one\rtwo\r\n\r\n")?.code.name == "bad_request", "bare CR in a value")
        // Tabs and obs-text are allowed in values.
        #expect(request(head + "X-A: a\tb \u{E9}\r\n\r\n")?.headers["x-a"] == "a\tb \u{E9}")
    }

    @Test func hostRules() {
        #expect(failure("GET / HTTP/1.1\r\n\r\n")?.message.contains("Host") == true)
        #expect(failure("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")?.message.contains("more than one Host") == true)
        #expect(request("GET / HTTP/1.0\r\n\r\n")?.version == .http1_0)
        #expect(request("GET / HTTP/1.1\r\nHost:\r\n\r\n") != nil, "an empty Host is valid")
    }

    @Test func requestLineErrors() {
        #expect(failure("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == .versionNotSupported("HTTP/2.0"))
        #expect(failure("GET / HTTP/1.2\r\nHost: h\r\n\r\n")?.status.code == 505)
        #expect(failure("GET / HTTP/0.9\r\n\r\n")?.code.name == "version_not_supported")
        for line in [
            "GET / HTTX/1.1", "GET / http/1.1", "GET / HTTP/1.1 ", "GET  / HTTP/1.1", "GET /  HTTP/1.1",
            "GET /", "GET / HTTP/11", "GET / HTTP/1.10", " GET / HTTP/1.1", "GET\t/ HTTP/1.1",
            "GET /a\u{7F} HTTP/1.1", "GET /\u{E9} HTTP/1.1", "GET / HTTP/1.1\r", "GET /\r/ HTTP/1.1",
            "GET foo HTTP/1.1", "GET * HTTP/1.1", "OPTIONS ** HTTP/1.1", "CONNECT host:443 HTTP/1.1",
        ] {
            #expect(failure(line + "\r\nHost: h\r\n\r\n")?.status.code == 400, "\(line.debugDescription)")
        }
    }

    @Test func targetForms() throws {
        let star = try #require(request("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(star.path == "*")
        #expect(star.query == nil)
        let absolute = try #require(request("GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(absolute.target == "http://example.com:8080/a/b?c=d")
        #expect(absolute.path == "/a/b")
        #expect(absolute.query == "c=d")
        let bare = try #require(request("GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(bare.path == "/")
        let bareQuery = try #require(request("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(bareQuery.path == "/")
        #expect(bareQuery.query == "x=1")
        let emptyQuery = try #require(request("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(emptyQuery.query == "")
    }

    @Test func expectContinueThenBody() throws {
        let head = Array("POST /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n".utf8)
        var parser = HTTPRequestParser()
        parser.append(head)
        #expect(parser.next() == .expectContinue)
        #expect(parser.next() == .needMoreData, "returned once")
        parser.append(Array("hel".utf8))
        #expect(parser.next() == .needMoreData)
        parser.append(Array("lo".utf8))
        guard case .request(let parsed) = parser.next() else {
            Issue.record("expected the request")
            return
        }
        #expect(parsed.body == Array("hello".utf8))
        #expect(parser.next() == .needMoreData)

        // Body already there: no 100 Continue needed.
        #expect(parse([head + Array("hello".utf8)], dropContinue: false).count == 1)
        // No body: nothing to continue.
        let empty = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
        #expect(parse([Array(empty.utf8)], dropContinue: false).count == 1)
        // Chunked bodies get it too.
        let chunked = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(parse([Array(chunked.utf8)], dropContinue: false) == [.expectContinue])
        // Too large: refused instead of continued.
        let big = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n"
        #expect(
            parse([Array(big.utf8)], limits: HTTPParserLimits(maxBodyBytes: 10), dropContinue: false)
                == [.failure(.bodyTooLarge(limit: 10))]
        )
    }

    @Test func otherExpectationsFail() {
        let error = failure("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx")
        #expect(error == .expectationFailed("200-ok"))
        #expect(error?.status.code == 417)
        // HTTP/1.0 requests' Expect is ignored.
        #expect(request("POST / HTTP/1.0\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx")?.body == [UInt8(ascii: "x")])
    }

    @Test func leadingEmptyLinesAreSkipped() throws {
        let parsed = try #require(request("\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(parsed.path == "/")
        // Between pipelined requests too (some clients add CRLF after a body).
        let two = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(requests(parse(two)).map(\.path) == ["/", "/b"])
        let tooMany = String(repeating: "\r\n", count: HTTPParserLimits.defaultMaxLeadingEmptyLines + 1)
        #expect(failure(tooMany + "GET / HTTP/1.1\r\nHost: h\r\n\r\n")?.code.name == "bad_request")
    }

    @Test func bareLineFeedsAreAccepted() throws {
        let parsed = try #require(request("GET /lf HTTP/1.1\nHost: h\nX: y\n\n"))
        #expect(parsed.headers["x"] == "y")
    }

    @Test func failureIsSticky() {
        var parser = HTTPRequestParser()
        parser.append(Array("BAD\r\n".utf8))
        guard case .failure(let error) = parser.next() else {
            Issue.record("expected a failure")
            return
        }
        #expect(parser.hasFailed)
        parser.append(Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(parser.next() == .failure(error))
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func remainingBytesAfterAnUpgrade() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{05}".utf8))
        guard case .request(let parsed) = parser.next() else {
            Issue.record("expected the request")
            return
        }
        #expect(parsed.headers.containsToken("upgrade", inField: "connection"))
        #expect(parser.takeRemainingBytes() == Array("\u{81}\u{05}".utf8))
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func midRequestTracking() {
        var parser = HTTPRequestParser()
        #expect(!parser.isMidRequest)
        parser.append(Array("GET / HT".utf8))
        #expect(parser.next() == .needMoreData)
        #expect(parser.isMidRequest)
        parser.append(Array("TP/1.1\r\nHost: h\r\n\r\n".utf8))
        if case .request = parser.next() {} else { Issue.record("expected a request") }
        #expect(!parser.isMidRequest)
    }

    @Test func longLinesByteByByteStayLinear() {
        // 16 KB of header arriving one byte per call: each byte is scanned once, so this is fast.
        let text = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 16_000) + "\r\n\r\n"
        let results = parse(Array(text.utf8).map { [$0] })
        #expect(results.count == 1)
        if case .request(let parsed) = results.first {
            #expect(parsed.headers["x"]?.utf8.count == 16_000)
        }
    }

    @Test func largeBodyInPieces() {
        let body = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let head = Array("PUT /blob HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        let all = head + body
        var chunks: [[UInt8]] = []
        var start = 0
        while start < all.count {
            let end = min(start + 1500, all.count)
            chunks.append(Array(all[start..<end]))
            start = end
        }
        let parsed = requests(parse(chunks))
        #expect(parsed.first?.body == body)
    }

    @Test func errorsDescribeThemselves() {
        let errors: [HTTPParseError] = [
            .badRequest("x"), .uriTooLong(limit: 1), .headersTooLarge(limit: 1), .tooManyHeaders(limit: 1),
            .bodyTooLarge(limit: 1), .lengthRequired, .notImplemented("gzip"), .versionNotSupported("HTTP/2.0"),
            .expectationFailed("x"),
        ]
        #expect(errors.map(\.status.code) == [400, 414, 431, 431, 413, 411, 501, 505, 417])
        #expect(
            errors.map(\.code.name) == [
                "bad_request", "uri_too_long", "headers_too_large", "headers_too_large", "body_too_large",
                "length_required", "not_implemented", "version_not_supported", "expectation_failed",
            ]
        )
        for error in errors { #expect(!error.message.isEmpty) }
        let response = HTTPParseError.bodyTooLarge(limit: 10).response
        #expect(response.status.code == 413)
        #expect(
            String(decoding: response.body, as: UTF8.self)
                == #"{"error":{"code":"body_too_large","message":"The request body is larger than 10 bytes."}}"#
        )
    }
}
