import EventCore

/// One Raft group's share of a ``RaftGroupMultiplexer``'s transport: the
/// ``EventCore/Transport`` to give the group's ``RaftNode``.
///
/// It receives the frames of its group only; it sends through the
/// multiplexer, which coalesces a turn's frames per peer, on the shared
/// transport, with its endpoint and message limit. Confined to the
/// transport's loop.
public final class RaftGroupChannel: Transport {
    /// The group whose frames this channel receives.
    public let group: UInt64
    /// The multiplexer this channel belongs to (kept alive by the channel).
    public let multiplexer: RaftGroupMultiplexer

    init(group: UInt64, multiplexer: RaftGroupMultiplexer) {
        self.group = group
        self.multiplexer = multiplexer
    }

    /// The shared transport's endpoint.
    public var localEndpoint: Endpoint { multiplexer.transport.localEndpoint }

    /// The shared transport's largest message.
    public var maximumMessageSize: Int { multiplexer.transport.maximumMessageSize }

    /// Queues `message` for `destination` until the end of the loop turn,
    /// when the multiplexer sends it, coalesced with the other frames to
    /// that peer (see ``RaftGroupMultiplexer``).
    ///
    /// - Throws: `TransportError(.messageTooLarge)` for a message longer
    ///   than the shared transport's `maximumMessageSize`. A datagram the
    ///   transport refuses later is counted in
    ///   ``RaftGroupMultiplexer/Counters/sendFailures``.
    public func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
        try multiplexer.send(message, to: destination)
    }

    /// Installs the function that receives every frame of ``group`` that
    /// reaches the shared transport, replacing any earlier one (of this
    /// channel or of another channel of the group).
    public func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) {
        multiplexer.setHandler(handler, for: group, of: self)
    }

    /// Removes this channel's receive handler, if it is still the one that
    /// receives ``group``'s frames. Frames of a group with no handler are
    /// dropped and counted (``RaftGroupMultiplexer/Counters/unclaimed``).
    public func removeReceiveHandler() {
        multiplexer.removeHandler(for: group, of: self)
    }
}
