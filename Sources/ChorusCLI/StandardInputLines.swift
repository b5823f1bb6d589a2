import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The lines of standard input as raw bytes (any encoding, no newline),
/// read on a thread of their own so that a blocking read never holds a
/// task's thread. The stream ends at end of input.
enum StandardInputLines {
    /// The longest line kept whole; a longer one is split.
    static let maximumLineLength = 64 * 1024

    static func stream() -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(1_024))
        let reader = Thread {
            var line: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4_096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                for byte in buffer[..<count] {
                    if byte == UInt8(ascii: "\n") || line.count == maximumLineLength {
                        continuation.yield(line)
                        line.removeAll(keepingCapacity: true)
                        if byte == UInt8(ascii: "\n") { continue }
                    }
                    line.append(byte)
                }
            }
            if !line.isEmpty { continuation.yield(line) }
            continuation.finish()
        }
        reader.start()
        return stream
    }
}
