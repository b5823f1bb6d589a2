/// The identity of one node of a cluster: a 64-bit number, unique within the
/// cluster, chosen by the user or drawn at random.
///
/// Node IDs order ballots (CASPaxos) and break ties; they are printed in
/// hexadecimal.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The identifier's value.
    public var rawValue: UInt64

    /// Creates a node ID with the given value.
    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
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
