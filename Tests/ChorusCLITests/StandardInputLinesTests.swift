import Foundation
import Testing
@testable import ChorusCLI

#if canImport(Glibc)
import Glibc
#endif

@Suite("chorus standard input lines")
struct StandardInputLinesTests {
    /// Writes `text` to `descriptor` from a thread of its own, then closes
    /// it (the reader's end of input).
    static func write(_ text: [UInt8], to descriptor: Int32) {
        let writer = Thread {
            var bytes = text[...]
            while !bytes.isEmpty {
                let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                guard written > 0 else { break }
                bytes = bytes.dropFirst(written)
            }
            close(descriptor)
        }
        writer.start()
    }

    /// The reader used to drop the lines that came while its buffer was
    /// full: piped in fast, most of a file never reached `chorus gossip`'s
    /// or `chorus swim`'s broadcast, without a word.
    @Test("a consumer slower than the input loses no line: the reader waits while its buffer is full")
    func slowConsumerLosesNothing() async throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer { close(readEnd) }
        let count = 3 * StandardInputLines.bufferedLines
        let text = (0..<count).map { "line \($0)\n" }.joined()
        Self.write(Array(text.utf8), to: writeEnd)
        var lines: [String] = []
        for await line in StandardInputLines.stream(reading: readEnd) {
            // Slow at first: the reader fills its buffer meanwhile.
            if lines.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
            lines.append(String(decoding: line, as: UTF8.self))
        }
        #expect(lines.count == count)
        let inOrder = lines == (0..<count).map { "line \($0)" }
        #expect(inOrder, "lines changed or out of order")
    }

    @Test("a line longer than the reader keeps whole comes in pieces that say more follows, so that `chorus node` can refuse all of it")
    func longLinePieces() async throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer { close(readEnd) }
        let long = StandardInputLines.maximumLineLength + 6_000
        let text = Array("short\n".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: long) + Array("\nnext\nlast".utf8)
        Self.write(text, to: writeEnd)
        var lines: [(count: Int, continues: Bool)] = []
        for await line in StandardInputLines.lines(reading: readEnd) { lines.append((line.bytes.count, line.continues)) }
        #expect(lines.map(\.count) == [5, StandardInputLines.maximumLineLength, 6_000, 4, 4])
        #expect(lines.map(\.continues) == [false, true, false, false, false])
    }
}
