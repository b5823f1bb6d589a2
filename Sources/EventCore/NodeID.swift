/// The identity of one node of a cluster: a 64-bit number, unique within the
/// cluster, chosen by the user or drawn at random.
///
/// Node IDs order ballots (CASPaxos) and break ties; they are printed in
/// hexadecimal, and read back from it (``init(_:)-(String)``: store an ID
/// as text).
public struct NodeID: Hashable, Comparable, Sendable, LosslessStringConvertible {
    /// The identifier's value.
    public var rawValue: UInt64

    /// Creates a node ID with the given value.
    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Reads an ID as ``description`` writes it: 1 to 16 hexadecimal digits
    /// (either case, leading zeros optional); nil for anything else.
    public init?(_ description: String) {
        let utf8 = description.utf8
        let isHexDigit = { (byte: UInt8) in
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
        }
        guard (1...16).contains(utf8.count), utf8.allSatisfy(isHexDigit), let value = UInt64(description, radix: 16)
        else { return nil }
        self.init(value)
    }

    /// Draws a random node ID from `generator`.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> NodeID {
        NodeID(generator.next())
    }

    /// Orders node IDs by their numeric value.
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// The ID as 16 hexadecimal digits.
    public var description: String {
        let hex = String(rawValue, radix: 16)
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }
}
