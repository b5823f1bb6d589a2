import Testing
import EventCore

@Suite("Endpoint")
struct EndpointTests {
    @Test("IPv4 and IPv6 endpoints parse and print back", arguments: [
        "127.0.0.1:7946", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:7946", "[fe80::1:2]:80", "[::]:1",
        "[2001:db8::ff00:42:8329]:443",
    ])
    func roundTrip(text: String) throws {
        let endpoint = try Endpoint(parsing: text)
        #expect(endpoint.description == text)
        #expect(Endpoint(text) == endpoint)
    }

    @Test("the loopback helpers name 127.0.0.1 and ::1")
    func loopback() {
        #expect(Endpoint.loopbackV4(port: 9).description == "127.0.0.1:9")
        #expect(Endpoint.loopbackV6(port: 9).description == "[::1]:9")
        #expect(Endpoint.loopbackV6().isIPv6)
        #expect(!Endpoint.loopbackV4().isIPv6)
    }

    @Test("bad strings give a typed reason", arguments: [
        ("127.0.0.1", EndpointParseError.Reason.missingPort),
        ("127.0.0.1:", .invalidPort),
        ("127.0.0.1:65536", .invalidPort),
        ("127.0.0.1:-1", .invalidPort),
        ("127.0.0.1:+80", .invalidPort),
        ("127.0.0.1:1x", .invalidPort),
        ("127.0.0.1:٣", .invalidPort),
        ("localhost:80", .invalidAddress),
        ("1.2.3:80", .invalidAddress),
        ("::1:80", .ipv6WithoutBrackets),
        ("[::1:80", .unclosedBracket),
        ("[::1]80", .missingPort),
        ("[zz::1]:80", .invalidAddress),
        ("127.0.0.1\u{0}junk:80", .invalidAddress),
        ("[::1\u{0}junk]:80", .invalidAddress),
        ("", .missingPort),
    ])
    func rejects(text: String, reason: EndpointParseError.Reason) {
        #expect(throws: EndpointParseError(reason, text: text)) { try Endpoint(parsing: text) }
        #expect(Endpoint(text) == nil)
    }

    @Test("errors describe the problem and the text")
    func errorText() {
        let error = EndpointParseError(.invalidPort, text: "a:b")
        #expect(error.description.contains("a:b"))
        #expect(error.description.contains("port"))
    }
}
