/// The largest sizes a decoder accepts from the network: every length and
/// count prefix is checked against these before anything is allocated.
///
/// Any value is safe to use (a negative maximum simply refuses everything),
/// so there is nothing to validate. Peers exchanging messages should use the
/// same limits: ``Frame/encode(protocol:flags:limits:into:body:)`` refuses to
/// build a frame its limits would reject on receipt.
public struct WireLimits: Hashable, Sendable {
    /// The longest length-prefixed byte string or UTF-8 string, in bytes.
    /// Default 4 MiB.
    public var maximumByteStringLength: Int
    /// The most elements a count-prefixed collection may declare. Default
    /// 65,536.
    public var maximumCollectionCount: Int
    /// The longest frame, in bytes, header included. Default 4 MiB plus the
    /// 13-byte ``FrameHeader/size``.
    public var maximumFrameLength: Int

    /// Creates limits; every argument has the default described on its
    /// property.
    @inlinable
    public init(
        maximumByteStringLength: Int = 4 << 20,
        maximumCollectionCount: Int = 65_536,
        maximumFrameLength: Int = (4 << 20) + FrameHeader.size
    ) {
        self.maximumByteStringLength = maximumByteStringLength
        self.maximumCollectionCount = maximumCollectionCount
        self.maximumFrameLength = maximumFrameLength
    }

    /// The default limits: 4 MiB byte strings, 65,536 elements, 4 MiB frame
    /// bodies.
    @inlinable
    public static var `default`: WireLimits { WireLimits() }
}
