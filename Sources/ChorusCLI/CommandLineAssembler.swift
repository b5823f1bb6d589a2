import Foundation

/// `chorus node`'s command lines from the pieces of standard input
/// (``StandardInputLines/lines(reading:)``): a line too long to keep whole
/// is refused, all of it. Run piece by piece, a `put` would store part of
/// its value, and the rest would run as commands of its own.
struct CommandLineAssembler {
    /// What a piece of input comes to.
    enum Outcome: Equatable {
        /// A whole line: a command, trimmed.
        case command(String)
        /// The first piece of a line too long: refuse the line.
        case refused
        /// A later piece of a refused line.
        case skipped
    }

    private var refusing = false

    /// What `piece`, the next piece of input, comes to.
    mutating func take(_ piece: StandardInputLines.Line) -> Outcome {
        defer { refusing = piece.continues }
        if refusing { return .skipped }
        if piece.continues { return .refused }
        return .command(String(decoding: piece.bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
