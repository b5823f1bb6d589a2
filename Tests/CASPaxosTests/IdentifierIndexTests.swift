@testable import CASPaxos
import EventCore
import Testing

/// The proposer's ID index agrees with a dictionary through inserts,
/// replacements and removals (backward shifts included), across growth.
@Suite("Identifier index")
struct IdentifierIndexTests {
    @Test("agrees with a dictionary (fixed seed)")
    func agreesWithDictionary() {
        var random = SeededRandomGenerator(seed: 12)
        var index = IdentifierIndex()
        var model: [UInt64: Int] = [:]
        var disagreements = 0
        for round in 0..<20_000 {
            // Mostly consecutive IDs, as the proposer issues them, some far apart.
            let id = Bool.random(using: &random)
                ? UInt64.random(in: 1...2_000, using: &random) : UInt64.random(in: 1...UInt64.max, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                if index.remove(id) != model.removeValue(forKey: id) { disagreements += 1 }
            default:
                index.set(id, round)
                model[id] = round
            }
            if index.count != model.count || index[id] != model[id] { disagreements += 1 }
        }
        for (id, value) in model where index[id] != value { disagreements += 1 }
        #expect(disagreements == 0)
        #expect(index[0] == nil)
        index.set(0, 1)
        #expect(index[0] == nil && index.remove(0) == nil)
    }
}
