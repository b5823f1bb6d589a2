import Foundation

/// Where a demo scenario keeps its files (the Raft logs, the CASPaxos
/// acceptors' stores): a directory of the system's temporary directory
/// named `chorus-<scenario>-<process ID>-<random>`, removed when the
/// scenario ends, or by ``removeAll(ofProcess:)`` when `chorus demo` is
/// interrupted (Ctrl-C or SIGTERM), so that no run leaves one behind.
enum DemoScratchDirectory {
    /// The scenarios that keep files.
    static let scenarios = ["raft", "caspaxos"]

    /// A new directory's URL for `scenario` (one of ``scenarios``), not yet
    /// created.
    static func url(for scenario: String) -> URL {
        let process = ProcessInfo.processInfo.processIdentifier
        return FileManager.default.temporaryDirectory
            .appendingPathComponent("chorus-\(scenario)-\(process)-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// Removes every scratch directory of process `process` in `parent`
    /// (by default this process's, in the temporary directory).
    static func removeAll(
        ofProcess process: Int32 = ProcessInfo.processInfo.processIdentifier,
        in parent: URL = FileManager.default.temporaryDirectory
    ) {
        let prefixes = scenarios.map { "chorus-\($0)-\(process)-" }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        for name in names where prefixes.contains(where: name.hasPrefix) {
            try? FileManager.default.removeItem(at: parent.appendingPathComponent(name))
        }
    }
}
