import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The lines of standard input as raw bytes (any encoding, no newline),
/// read on a thread of their own so that a blocking read never holds a
/// task's thread. The stream ends at end of input.
///
/// No line is lost: while ``bufferedLines`` wait unread, the reader
/// thread stops reading (input piped in faster than the command
/// broadcasts waits in the pipe).
enum StandardInputLines {
    /// The longest line kept whole; a longer one is split.
    static let maximumLineLength = 64 * 1024
    /// The lines read ahead of the consumer.
    static let bufferedLines = 1_024

    /// The lines of `descriptor` (standard input by default), which the
    /// stream reads to its end but does not close.
    static func stream(reading descriptor: Int32 = STDIN_FILENO) -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: [UInt8].self, bufferingPolicy: .bufferingOldest(bufferedLines))
        let reader = Thread {
            var line: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4_096)
            reading: while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                for byte in buffer[..<count] {
                    if byte == UInt8(ascii: "\n") || line.count == maximumLineLength {
                        guard deliver(line, to: continuation) else { break reading }
                        line.removeAll(keepingCapacity: true)
                        if byte == UInt8(ascii: "\n") { continue }
                    }
                    line.append(byte)
                }
            }
            if !line.isEmpty { _ = deliver(line, to: continuation) }
            continuation.finish()
        }
        reader.start()
        return stream
    }

    /// Hands `line` to the stream, waiting while its buffer is full (1 ms,
    /// doubling up to 50 ms, so that a consumer held up long does not keep
    /// the thread polling); false once the consumer has gone.
    private static func deliver(_ line: [UInt8], to continuation: AsyncStream<[UInt8]>.Continuation) -> Bool {
        var wait: UInt32 = 1_000
        while true {
            switch continuation.yield(line) {
            case .enqueued: return true
            case .terminated: return false
            case .dropped:
                usleep(wait)
                wait = min(wait * 2, 50_000)
            @unknown default: return false
            }
        }
    }
}
