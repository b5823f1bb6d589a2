import WireCodec

/// A protocol driver's incoming path, the counterpart of ``FrameSender``:
/// each datagram's frame is verified (``Frame/decodeBody(_:of:limits:)``)
/// and its body decoded into the protocol's message; a datagram that fails
/// either step is counted and logged, never thrown at the protocol.
/// Confined to the driver's loop.
public struct FrameReceiver {
    /// The protocol whose frames this receiver takes; others are dropped.
    public let protocolID: ProtocolID
    /// The limits the frame and its body are checked against.
    public let limits: WireLimits
    private let logger: any LogSink
    private let source: String
    /// Datagrams dropped because they were not a valid frame of
    /// ``protocolID`` or their body did not decode.
    public private(set) var malformedFramesDropped = 0

    /// Creates a receiver of `protocolID` frames checked against `limits`;
    /// drops are logged to `logger` under `source`.
    public init(protocolID: ProtocolID, limits: WireLimits, logger: any LogSink, source: String) {
        self.protocolID = protocolID
        self.limits = limits
        self.logger = logger
        self.source = source
    }

    /// Verifies the frame in `datagram` and decodes its body with
    /// `decodeBody`, which is given ``limits``; returns nil, counted and
    /// logged, if either throws.
    public mutating func decode<Message>(
        _ datagram: UnsafeRawBufferPointer, from sender: Endpoint,
        _ decodeBody: (UnsafeRawBufferPointer, WireLimits) throws(WireError) -> Message
    ) -> Message? {
        do throws(WireError) {
            return try decodeBody(try Frame.decodeBody(datagram, of: protocolID, limits: limits), limits)
        } catch {
            malformedFramesDropped += 1
            logger.log(.debug, source: source, "dropped a frame from \(sender): \(error)")
            return nil
        }
    }
}
