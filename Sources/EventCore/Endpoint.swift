#if canImport(Glibc)
import Glibc
#endif

/// A UDP endpoint: an IPv4 or IPv6 address and a port.
///
/// Parsed from and printed as `host:port` for IPv4 (`127.0.0.1:7946`) and
/// `[address]:port` for IPv6 (`[::1]:7946`). Host names are not resolved here:
/// an endpoint is always a literal address, so parsing never blocks.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    /// The address part of an endpoint.
    public enum Address: Hashable, Sendable {
        /// An IPv4 address, as four bytes in network order packed big-endian
        /// into a `UInt32` (`127.0.0.1` is `0x7F00_0001`).
        case ipv4(UInt32)
        /// An IPv6 address: its 16 bytes in network order, packed big-endian
        /// into two `UInt64` halves.
        case ipv6(high: UInt64, low: UInt64)
    }

    /// The address.
    public var address: Address
    /// The UDP port (0 asks the kernel to choose one when binding).
    public var port: UInt16

    /// Creates an endpoint from an address and a port.
    public init(address: Address, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `127.0.0.1` with the given port.
    public static func loopbackV4(port: UInt16 = 0) -> Endpoint {
        Endpoint(address: .ipv4(0x7F00_0001), port: port)
    }

    /// `::1` with the given port.
    public static func loopbackV6(port: UInt16 = 0) -> Endpoint {
        Endpoint(address: .ipv6(high: 0, low: 1), port: port)
    }

    /// Whether the address is the wildcard (0.0.0.0 or ::): any local
    /// address.
    public var isWildcard: Bool {
        switch address {
        case .ipv4(let value): value == 0
        case .ipv6(let high, let low): high == 0 && low == 0
        }
    }

    /// Whether the address is IPv6.
    public var isIPv6: Bool {
        if case .ipv6 = address { return true }
        return false
    }

    /// Parses `a.b.c.d:port` or `[v6]:port`.
    ///
    /// - Throws: ``EndpointParseError`` naming what was wrong with the text.
    public init(parsing text: String) throws(EndpointParseError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw EndpointParseError(.unclosedBracket, text: text)
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw EndpointParseError(.missingPort, text: text) }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw EndpointParseError(.missingPort, text: text)
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { throw EndpointParseError(.ipv6WithoutBrackets, text: text) }
        }
        guard !portPart.isEmpty, portPart.allSatisfy(\.isASCII), portPart.allSatisfy(\.isNumber),
            portPart.count <= 5, let port = UInt16(portPart)
        else {
            throw EndpointParseError(.invalidPort, text: text)
        }
        guard let address = Address(parsing: String(hostPart)) else {
            throw EndpointParseError(.invalidAddress, text: text)
        }
        self.init(address: address, port: port)
    }

    /// Parses an endpoint, returning nil for text that is not one
    /// (`LosslessStringConvertible`). Use ``init(parsing:)`` for the reason.
    public init?(_ description: String) {
        guard let parsed = try? Endpoint(parsing: description) else { return nil }
        self = parsed
    }

    /// `a.b.c.d:port`, or `[v6]:port` for IPv6: text ``init(parsing:)`` reads back.
    public var description: String {
        switch address {
        case .ipv4: return "\(address):\(port)"
        case .ipv6: return "[\(address)]:\(port)"
        }
    }
}

extension Endpoint.Address: CustomStringConvertible {
    /// Parses a literal IPv4 (`10.0.0.1`) or IPv6 (`fe80::1`) address, or
    /// returns nil.
    public init?(parsing text: String) {
        // inet_pton reads a C string: an embedded NUL would hide what follows it.
        guard !text.utf8.contains(0) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .ipv4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self = withUnsafeBytes(of: &v6) { raw in
                var high: UInt64 = 0
                var low: UInt64 = 0
                for i in 0..<8 { high = high << 8 | UInt64(raw[i]) }
                for i in 8..<16 { low = low << 8 | UInt64(raw[i]) }
                return .ipv6(high: high, low: low)
            }
            return
        }
        return nil
    }

    /// The address in its conventional text form (`10.0.0.1`, `fe80::1`).
    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch self {
        case .ipv4(let value):
            var raw = in_addr(s_addr: value.bigEndian)
            _ = inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count))
        case .ipv6(let high, let low):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { bytes in
                for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i))) }
                for i in 0..<8 { bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i))) }
            }
            _ = inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Why a string is not an ``Endpoint``.
public struct EndpointParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong.
    public enum Reason: Hashable, Sendable {
        /// No `:port` after the host.
        case missingPort
        /// The port is not a number from 0 to 65535.
        case invalidPort
        /// The host is not a literal IPv4 or IPv6 address.
        case invalidAddress
        /// An IPv6 address must be written in brackets: `[::1]:7946`.
        case ipv6WithoutBrackets
        /// A `[` with no matching `]`.
        case unclosedBracket
    }

    /// What was wrong.
    public var reason: Reason
    /// The text that failed to parse.
    public var text: String

    /// Creates an error for `text`.
    public init(_ reason: Reason, text: String) {
        self.reason = reason
        self.text = text
    }

    /// The reason and the text that failed, for people.
    public var description: String {
        let why: String
        switch reason {
        case .missingPort: why = "missing ':port'"
        case .invalidPort: why = "port is not a number from 0 to 65535"
        case .invalidAddress: why = "host is not a literal IPv4 or IPv6 address"
        case .ipv6WithoutBrackets: why = "an IPv6 address must be bracketed, as in [::1]:7946"
        case .unclosedBracket: why = "'[' without a matching ']'"
        }
        return "invalid endpoint '\(text)': \(why)"
    }
}
