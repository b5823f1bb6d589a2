/// Per-frame flags (frame header byte 4).
///
/// Bits without a defined meaning are carried through unchanged: a decoder
/// does not reject them, so a later version can assign them.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    /// The flag bits.
    public var rawValue: UInt8

    /// Creates flags from their bits.
    @inlinable
    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// The body is one fragment of a message too large for one datagram;
    /// set and consumed by UDPTransport's fragmentation layer.
    public static let fragment = FrameFlags(rawValue: 1 << 0)
}
