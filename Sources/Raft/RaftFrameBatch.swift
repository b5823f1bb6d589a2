import WireCodec

/// The Raft frames of one datagram that carries several: what a
/// ``RaftGroupMultiplexer`` sends when the groups on its transport address
/// more than one frame to one peer in a loop turn (their heartbeats, which
/// fall due together, and the answers to them).
///
/// A batch is itself a Raft frame, whose body is the byte ``kind`` (a
/// value no ``RaftMessage`` kind takes) followed by whole Raft frames back
/// to back, each with its own header and checksum:
///
/// | Body offset | Size | Field                                          |
/// |------------:|-----:|------------------------------------------------|
/// |           0 |    1 | ``kind``, `0xFF`                                |
/// |           1 |    n | Raft frames, one after another (at least one)  |
///
/// The batch's own checksum covers the whole datagram; each inner frame is
/// then verified again where it is decoded, by its group's ``RaftNode``,
/// exactly as if it had come alone. A batch holds no batch. Both a
/// ``RaftGroupMultiplexer`` and a ``RaftNode`` on a transport of its own
/// read batches, so a node may run beside multiplexed peers.
///
/// Create one from a verified batch body (``init(body:)``, which checks
/// its structure); iterating yields the inner frames, which point into the
/// body.
struct RaftFrameBatch: Sequence {
    /// The body's first byte in a batch.
    static let kind: UInt8 = 0xFF

    /// The bytes a batch adds to its frames: the frame header and ``kind``.
    static let overhead = FrameHeader.size + 1

    private let body: UnsafeRawBufferPointer

    /// Whether `datagram` claims to be a batch: a Raft frame header whose
    /// body starts with ``kind``. Nothing else is checked.
    static func isBatch(_ datagram: UnsafeRawBufferPointer) -> Bool {
        datagram.count > FrameHeader.size && datagram[3] == ProtocolID.raft.rawValue
            && datagram[FrameHeader.size] == kind
    }

    /// Checks that `body`, a verified batch frame's body, is ``kind``
    /// followed by one or more whole Raft frames, none of them a batch,
    /// each naming its group (``RaftMessage/peekGroup(_:)``): a batch is
    /// taken or dropped whole.
    ///
    /// - Throws: `WireError`: `.invalidValue` for a body that is not a
    ///   batch, holds no frame, or holds a batch or a frame of another
    ///   protocol; `.truncated` for a frame that runs past the body, or
    ///   whose body is too short to name a group; what
    ///   ``WireCodec/FrameHeader/peek(_:)`` throws for a bad inner header.
    ///   Offsets are the body's.
    init(body: UnsafeRawBufferPointer) throws(WireError) {
        guard body.first == Self.kind else {
            throw WireError(.invalidValue, offset: 0, detail: "not a batch of Raft frames")
        }
        guard body.count > 1 else {
            throw WireError(.invalidValue, offset: 0, detail: "a batch of no frames")
        }
        var offset = 1
        while offset < body.count {
            let rest = UnsafeRawBufferPointer(rebasing: body[offset...])
            let header: FrameHeader
            do throws(WireError) {
                header = try FrameHeader.peek(rest)
            } catch {
                throw WireError(error.code, offset: offset + error.offset, detail: "in a batch: \(error.detail)")
            }
            guard header.frameLength <= rest.count else {
                throw WireError(
                    .truncated, offset: offset, detail: "a frame of \(header.frameLength) bytes, \(rest.count) remain in the batch")
            }
            guard header.bodyLength == 0 || rest[FrameHeader.size] != Self.kind else {
                throw WireError(.invalidValue, offset: offset + FrameHeader.size, detail: "a batch in a batch")
            }
            // Of Raft, and long enough to name its group.
            let frame = UnsafeRawBufferPointer(rebasing: rest[..<header.frameLength])
            do throws(WireError) {
                _ = try RaftMessage.peekGroup(frame)
            } catch {
                throw WireError(error.code, offset: offset + error.offset, detail: "in a batch: \(error.detail)")
            }
            offset += header.frameLength
        }
        self.body = body
    }

    /// Yields the batch's frames in order.
    struct Iterator: IteratorProtocol {
        fileprivate let body: UnsafeRawBufferPointer
        fileprivate var offset = 1

        mutating func next() -> UnsafeRawBufferPointer? {
            guard offset < body.count else { return nil }
            let start = offset
            // Checked by `init(body:)`: a whole frame starts here.
            offset = RaftFrameBatch.end(ofFrameAt: start, in: body)
            return UnsafeRawBufferPointer(rebasing: body[start..<offset])
        }
    }

    /// Where the frame at `offset` of `bytes` ends, read from its header's
    /// body length: `bytes` must hold a whole frame there (one checked by
    /// ``init(body:)``, or queued whole by the multiplexer).
    static func end(ofFrameAt offset: Int, in bytes: UnsafeRawBufferPointer) -> Int {
        let bodyLength = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 5, as: UInt32.self))
        return offset + FrameHeader.size + Int(bodyLength)
    }

    func makeIterator() -> Iterator {
        Iterator(body: body)
    }

    /// Appends to `writer` a batch of `frames`, whole Raft frames back to
    /// back (none a batch), in a frame of up to `limits.maximumFrameLength`
    /// bytes.
    ///
    /// - Throws: `WireError.lengthExceedsLimit` for a longer batch.
    static func encode(
        _ frames: UnsafeRawBufferPointer, limits: WireLimits, into writer: inout WireWriter
    ) throws(WireError) {
        try Frame.encode(protocol: .raft, limits: limits, into: &writer) { body in
            body.writeUInt8(kind)
            body.writeRawBytes(frames)
        }
    }
}
