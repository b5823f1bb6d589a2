import EventCore
import Foundation

/// A warning on standard error when a gossip node given seeds has heard
/// from none of them after a while: a wrong address or port otherwise
/// shows only as silence. (A SWIM member warns by itself, through its
/// logger: `chorus swim` and `chorus node` need no such thing.)
enum SeedWarning {
    /// After `delay`, warns if `isAlone` (run then) says the node still
    /// knows no other; nothing without seeds.
    static func schedule(
        command: String, seeds: [Endpoint], after delay: Duration = .seconds(5),
        isAlone: @escaping @Sendable () async throws -> Bool
    ) {
        guard !seeds.isEmpty else { return }
        Task {
            try? await Task.sleep(for: delay)
            guard (try? await isAlone()) == true else { return }
            let list = seeds.map(\.description).joined(separator: ", ")
            FileHandle.standardError.write(Data(
                "chorus \(command): no seed has answered in \(delay) (\(list)): check each address and port, and that a node runs there\n".utf8))
        }
    }
}
