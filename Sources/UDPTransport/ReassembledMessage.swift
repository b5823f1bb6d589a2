#if canImport(Glibc)
import Glibc
#endif

/// A message put back together from its fragments by a
/// ``FragmentReassembler``. It owns its bytes; read them with
/// ``withUnsafeBytes(_:)``.
///
/// Its storage is allocated, uninitialized, when a message's first fragment
/// arrives, and handed out only once every byte has been written. From
/// ``freshStorageThreshold`` bytes on it is mapped anonymous memory of its
/// own (`mmap`), whose pages the kernel backs only once written: what the
/// reassembler charges an incomplete message, the pages its fragments
/// wrote, is then what it holds. Storage from `malloc` may be memory a
/// completed message just freed, already backed whole: glibc keeps freed
/// blocks of up to 32 MiB for reuse, so a flood of claims to large
/// messages held four times the byte cap.
public final class ReassembledMessage {
    /// The message's length in bytes.
    public let count: Int
    private let storage: UnsafeMutableRawPointer
    /// The length mapped for the storage; 0 when it came from `malloc`.
    private let mappedLength: Int

    /// The size from which a message's storage is mapped memory of its own
    /// (64 KiB): below it, an incomplete message can hold at most 16 times
    /// the pages it is charged.
    static let freshStorageThreshold = 64 << 10

    /// Allocates room for a message of `count` bytes.
    init(count: Int) {
        self.count = count
        if count >= Self.freshStorageThreshold,
            let mapped = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            mapped != MAP_FAILED
        {
            storage = mapped
            mappedLength = count
        } else {
            storage = .allocate(byteCount: max(count, 1), alignment: 1)
            mappedLength = 0
        }
    }

    deinit {
        if mappedLength > 0 {
            munmap(storage, mappedLength)
        } else {
            storage.deallocate()
        }
    }

    /// How many pages of the storage are backed by memory now (`mincore`),
    /// or nil if it did not come from `mmap`: for tests.
    var residentPages: Int? {
        guard mappedLength > 0 else { return nil }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: (mappedLength + pageSize - 1) / pageSize)
        guard mincore(storage, mappedLength, &vector) == 0 else { return nil }
        return vector.reduce(0) { $0 + Int($1 & 1) }
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
