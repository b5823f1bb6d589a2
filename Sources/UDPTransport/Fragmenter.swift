import EventCore

/// Cuts a message into fragment datagrams of at most a given size: the
/// sending half of the fragmentation layer (``FragmentReassembler`` is the
/// receiving half). Sans-IO: it writes into buffers the caller provides.
///
/// ```swift
/// let fragmenter = try Fragmenter(maximumDatagramSize: 1_400)
/// let count = fragmenter.fragmentCount(messageLength: message.count)
/// for index in 0..<count {
///     let length = fragmenter.writeFragment(index, count: count, of: message, messageID: id, into: buffer)
///     // send buffer[..<length]
/// }
/// ```
public struct Fragmenter: Hashable, Sendable {
    /// The largest datagram written, in bytes.
    public let maximumDatagramSize: Int

    /// The largest chunk of the message one fragment carries, in bytes:
    /// ``maximumDatagramSize`` less ``FragmentHeader/datagramOverhead``.
    public var maximumChunkSize: Int { maximumDatagramSize - FragmentHeader.datagramOverhead }

    /// Creates a fragmenter for datagrams of at most `maximumDatagramSize`
    /// bytes.
    ///
    /// - Throws: ``EventCore/ConfigurationError`` (field
    ///   `"maximumDatagramSize"`) unless `maximumDatagramSize` is from 26
    ///   (``FragmentHeader/datagramOverhead`` plus one byte of message) to
    ///   65,507 (the largest UDP payload).
    public init(maximumDatagramSize: Int) throws(ConfigurationError) {
        try ConfigurationError.checkRange(
            "maximumDatagramSize", maximumDatagramSize, (FragmentHeader.datagramOverhead + 1)...65_507)
        self.maximumDatagramSize = maximumDatagramSize
    }

    /// The number of fragments a message of `messageLength` bytes (at least
    /// 1) is cut into: as few as fit, their chunks as even as possible.
    public func fragmentCount(messageLength: Int) -> Int {
        max(1, messageLength / maximumChunkSize + (messageLength % maximumChunkSize == 0 ? 0 : 1))
    }

    /// Writes fragment `index` of the `count` fragments of `message` to the
    /// start of `datagram` (at least ``maximumDatagramSize`` bytes) and
    /// returns the datagram's length.
    ///
    /// `count` must be ``fragmentCount(messageLength:)`` of the message (at
    /// most 65,535) and `index` below it; `messageID` must differ from those
    /// of the sender's other messages in flight.
    public func writeFragment(
        _ index: Int, count: Int, of message: UnsafeRawBufferPointer, messageID: UInt32,
        into datagram: UnsafeMutableRawBufferPointer
    ) -> Int {
        guard let range = FragmentHeader.chunkRange(index: index, count: count, messageLength: message.count),
            let wireIndex = UInt16(exactly: index), let wireCount = UInt16(exactly: count),
            let wireLength = UInt32(exactly: message.count), range.count <= maximumChunkSize
        else {
            preconditionFailure("Fragmenter.writeFragment: fragment \(index) of \(count) for \(message.count) bytes")
        }
        let header = FragmentHeader(
            messageID: messageID, index: wireIndex, count: wireCount, messageLength: wireLength)
        let protocolID = message.count > 3 ? message[3] : 0
        return header.encode(
            chunk: UnsafeRawBufferPointer(rebasing: message[range]), protocolID: protocolID, into: datagram)
    }
}
