import EventCore
import WireCodec

/// One protocol's share of a ``ProtocolMultiplexer``'s transport: a
/// ``EventCore/Transport`` to give a node in place of the shared one.
///
/// It receives the frames of its protocol only; it sends through the
/// shared transport, with its endpoint and message limit. A node sends only
/// frames of its own protocol, so a channel does not look at what it
/// sends. Confined to the transport's loop.
public final class ProtocolChannel: Transport {
    /// The protocol whose frames this channel receives.
    public let protocolID: ProtocolID
    /// The multiplexer this channel belongs to (kept alive by the channel).
    public let multiplexer: ProtocolMultiplexer

    init(_ protocolID: ProtocolID, multiplexer: ProtocolMultiplexer) {
        self.protocolID = protocolID
        self.multiplexer = multiplexer
    }

    /// The shared transport's endpoint.
    public var localEndpoint: Endpoint { multiplexer.transport.localEndpoint }

    /// The shared transport's largest message.
    public var maximumMessageSize: Int { multiplexer.transport.maximumMessageSize }

    /// Queues `message` on the shared transport; see
    /// ``EventCore/Transport/send(_:to:)``.
    public func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
        try multiplexer.transport.send(message, to: destination)
    }

    /// Installs the function that receives every frame of ``protocolID``
    /// that reaches the shared transport, replacing any earlier one (of
    /// this channel or of another channel of the same protocol).
    public func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) {
        multiplexer.setHandler(handler, for: protocolID, of: self)
    }

    /// Removes this channel's receive handler, if it is still the one
    /// that receives ``protocolID``'s frames (another channel of the
    /// protocol may have installed one since: that one stays). Frames of
    /// the protocol with no handler are dropped and counted
    /// (``ProtocolMultiplexer/Counters/unclaimed``).
    public func removeReceiveHandler() {
        multiplexer.removeHandler(for: protocolID, of: self)
    }
}
