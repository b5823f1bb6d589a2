/// A message put back together from its fragments by a
/// ``FragmentReassembler``. It owns its bytes; read them with
/// ``withUnsafeBytes(_:)``.
///
/// Its storage is allocated, uninitialized, when a message's first fragment
/// arrives, and handed out only once every byte has been written.
public final class ReassembledMessage {
    /// The message's length in bytes.
    public let count: Int
    private let storage: UnsafeMutableRawPointer

    /// Allocates room for a message of `count` bytes.
    init(count: Int) {
        self.count = count
        storage = .allocate(byteCount: max(count, 1), alignment: 1)
    }

    deinit {
        storage.deallocate()
    }

    /// Copies `chunk` to `offset`; the reassembler checked that it fits.
    func write(_ chunk: UnsafeRawBufferPointer, at offset: Int) {
        guard let source = chunk.baseAddress else { return }
        (storage + offset).copyMemory(from: source, byteCount: chunk.count)
    }

    /// Calls `body` with the message's bytes, valid only during the call.
    /// Throws what `body` throws.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }
}
