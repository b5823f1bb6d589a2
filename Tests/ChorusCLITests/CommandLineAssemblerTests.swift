import Testing

@testable import ChorusCLI

@Suite("chorus node's command lines")
struct CommandLineAssemblerTests {
    @Test("a line too long to keep whole is refused once, its later pieces skipped, and the next line runs")
    func longLinesRefusedWhole() {
        var assembler = CommandLineAssembler()
        let pieces: [(String, Bool)] = [
            (" get a \r", false), ("put a xxxx", true), ("xxxx", true), ("xxxx delete a", false), ("status", false),
        ]
        let outcomes = pieces.map { assembler.take(StandardInputLines.Line(bytes: Array($0.0.utf8), continues: $0.1)) }
        #expect(outcomes == [.command("get a"), .refused, .skipped, .skipped, .command("status")])
    }
}
