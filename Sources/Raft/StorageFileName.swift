/// The names of a ``FileRaftStorage``'s files. Numbers are written in
/// decimal with 20 digits, so that names sort as their numbers do:
///
/// - `wal-<sequence>-<first index>.log`: a segment of the write-ahead log.
///   The sequence number orders the segments as they were created (replay
///   goes in that order); the first index is the first log index the
///   segment may hold.
/// - `snapshot-<index>-<term>.snap`: a snapshot.
/// - either name followed by `.tmp`: a file being written, renamed to its
///   name once it is complete and synced, and removed when found on open.
enum StorageFileName {
    /// The suffix of a file not yet complete.
    static let temporarySuffix = ".tmp"

    /// A segment's name.
    static func segment(sequence: UInt64, firstIndex: UInt64) -> String {
        "wal-\(digits(sequence))-\(digits(firstIndex)).log"
    }

    /// The sequence number and first index a segment's name carries; nil if
    /// `name` is not a segment's.
    static func parseSegment(_ name: String) -> (sequence: UInt64, firstIndex: UInt64)? {
        guard let numbers = parse(name, prefix: "wal-", suffix: ".log") else { return nil }
        return (numbers.0, numbers.1)
    }

    /// A snapshot's name.
    static func snapshot(index: UInt64, term: UInt64) -> String {
        "snapshot-\(digits(index))-\(digits(term)).snap"
    }

    /// The index and term a snapshot's name carries; nil if `name` is not a
    /// snapshot's.
    static func parseSnapshot(_ name: String) -> (index: UInt64, term: UInt64)? {
        guard let numbers = parse(name, prefix: "snapshot-", suffix: ".snap") else { return nil }
        return (numbers.0, numbers.1)
    }

    /// `value` in decimal, padded with zeros to 20 digits.
    private static func digits(_ value: UInt64) -> String {
        let text = String(value)
        return String(repeating: "0", count: 20 - text.count) + text
    }

    /// The two 20-digit numbers of `<prefix><digits>-<digits><suffix>`.
    private static func parse(_ name: String, prefix: String, suffix: String) -> (UInt64, UInt64)? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let middle = name.utf8.dropFirst(prefix.utf8.count).dropLast(suffix.utf8.count)
        guard middle.count == 41, middle.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) })
        else { return nil }
        let parts = middle.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 20,
            let first = UInt64(String(decoding: parts[0], as: UTF8.self)),
            let second = UInt64(String(decoding: parts[1], as: UTF8.self))
        else { return nil }
        return (first, second)
    }
}
