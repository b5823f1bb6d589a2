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

    /// A line as ``lines(reading:)`` hands it over.
    struct Line: Sendable {
        var bytes: [UInt8]
        /// Whether more of the same line follows: a line longer than
        /// ``maximumLineLength`` comes in pieces of that length, then its
        /// end.
        var continues: Bool
    }

    /// The lines of `descriptor` (standard input by default), which the
    /// stream reads to its end but does not close; a longer line than
    /// ``maximumLineLength`` comes as several.
    static func stream(reading descriptor: Int32 = STDIN_FILENO) -> AsyncStream<[UInt8]> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: [UInt8].self, bufferingPolicy: .bufferingOldest(bufferedLines))
        read(descriptor, into: continuation) { bytes, _ in bytes }
        return stream
    }

    /// The lines of `descriptor`, each saying whether more of it follows.
    static func lines(reading descriptor: Int32 = STDIN_FILENO) -> AsyncStream<Line> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Line.self, bufferingPolicy: .bufferingOldest(bufferedLines))
        read(descriptor, into: continuation) { bytes, continues in Line(bytes: bytes, continues: continues) }
        return stream
    }

    /// Reads `descriptor` to its end on a thread of its own, handing each
    /// line or piece of a line to `continuation` as `element` makes it.
    private static func read<Element: Sendable>(
        _ descriptor: Int32, into continuation: AsyncStream<Element>.Continuation,
        _ element: @escaping @Sendable ([UInt8], Bool) -> Element
    ) {
        let reader = Thread {
            var line: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4_096)
            reading: while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                for byte in buffer[..<count] {
                    let ends = byte == UInt8(ascii: "\n")
                    if ends || line.count == maximumLineLength {
                        guard deliver(element(line, !ends), to: continuation) else { break reading }
                        line.removeAll(keepingCapacity: true)
                        if ends { continue }
                    }
                    line.append(byte)
                }
            }
            if !line.isEmpty { _ = deliver(element(line, false), to: continuation) }
            continuation.finish()
        }
        reader.start()
    }

    /// Hands `line` to the stream, waiting while its buffer is full (1 ms,
    /// doubling up to 50 ms, so that a consumer held up long does not keep
    /// the thread polling); false once the consumer has gone.
    private static func deliver<Element: Sendable>(_ line: Element, to continuation: AsyncStream<Element>.Continuation) -> Bool {
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
