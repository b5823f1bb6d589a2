import EventCore
import Simulation
import Testing

@Suite("Link conditions")
struct LinkConditionsTests {
    @Test("a constant delay delivers exactly that much later")
    func constantDelay() throws {
        let network = SimulatedNetwork(seed: 1)
        try network.setDefaultConditions(LinkConditions(delay: .constant(.milliseconds(7))))
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        network.run(until: .at(.milliseconds(3)))
        try a.send([42, 1, 2], to: b.localEndpoint)
        network.runUntilIdle()
        #expect(inbox.messages == [ReceivedMessage(bytes: [42, 1, 2], sender: a.localEndpoint, time: .at(.milliseconds(10)))])
    }

    @Test("uniform and exponential delays stay within their bounds")
    func delayBounds() throws {
        let seed: UInt64 = 11
        let network = SimulatedNetwork(seed: seed)
        let a = network.addNode()
        let b = network.addNode()
        let c = network.addNode()
        try network.setConditions(
            LinkConditions(delay: .uniform(minimum: .milliseconds(2), maximum: .milliseconds(5))), from: a, to: b)
        try network.setConditions(
            LinkConditions(delay: .exponential(mean: .milliseconds(1), maximum: .milliseconds(4))), from: a, to: c)
        let atB = Inbox(b)
        let atC = Inbox(c)
        for i in 0..<2_000 {
            try a.send(number: UInt8(i % 256), to: b)
            try a.send(number: UInt8(i % 256), to: c)
        }
        network.runUntilIdle()
        // Everything was sent at time zero: arrival times are the delays.
        let toB: [Int64] = atB.messages.map { Int64($0.time.nanoseconds) }
        let toC: [Int64] = atC.messages.map { Int64($0.time.nanoseconds) }
        #expect(toB.count == 2_000 && toC.count == 2_000, "seed \(seed)")
        #expect(toB.allSatisfy { (2_000_000...5_000_000).contains($0) }, "seed \(seed)")
        #expect(toB.min() ?? 0 < 2_100_000 && toB.max() ?? 0 > 4_900_000, "seed \(seed)")
        #expect(toC.allSatisfy { $0 <= 4_000_000 }, "seed \(seed)")
        let meanC = Double(toC.reduce(0, +)) / Double(toC.count) / 1e6
        // Mean of an exponential(1 ms) clamped at 4 ms: 1 - e^-4 ≈ 0.98 ms.
        #expect(abs(meanC - 0.98) < 0.1, "seed \(seed): mean \(meanC) ms")
    }

    @Test("loss drops about the configured fraction")
    func lossRate() throws {
        let seed: UInt64 = 12
        let network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(LinkConditions(lossProbability: 0.3))
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        for _ in 0..<20_000 { try a.send(number: 0, to: b) }
        network.runUntilIdle()
        let lost = Double(network.statistics.droppedByLoss) / 20_000
        #expect(abs(lost - 0.3) < 0.02, "seed \(seed): lost \(lost)")
        #expect(inbox.messages.count + network.statistics.droppedByLoss == 20_000, "seed \(seed)")
    }

    @Test("duplication delivers some messages twice and counts them")
    func duplication() throws {
        let seed: UInt64 = 13
        let network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(LinkConditions(duplicateProbability: 0.25))
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        for i in 0..<4_000 { try a.send([UInt8(i % 256), UInt8(i / 256)], to: b.localEndpoint) }
        network.runUntilIdle()
        let duplicated = network.statistics.duplicated
        #expect(abs(Double(duplicated) / 4_000 - 0.25) < 0.03, "seed \(seed): \(duplicated) duplicates")
        #expect(inbox.messages.count == 4_000 + duplicated, "seed \(seed)")
        #expect(Set(inbox.messages.map(\.bytes)).count == 4_000, "seed \(seed)")
    }

    @Test("messages on a link overtake each other only with jitter or reordering")
    func reordering() throws {
        func arrivalOrder(_ conditions: LinkConditions, seed: UInt64) throws -> [UInt8] {
            let network = SimulatedNetwork(seed: seed)
            try network.setDefaultConditions(conditions)
            let a = network.addNode()
            let b = network.addNode()
            let inbox = Inbox(b)
            for i in 0..<200 {
                network.schedule(at: .at(.microseconds(100 * Int64(i)))) { _ in
                    try? a.send(number: UInt8(i), to: b)
                }
            }
            network.runUntilIdle()
            return inbox.firstBytes
        }
        let inOrder = (0..<200).map { UInt8($0) }
        let steady = try arrivalOrder(LinkConditions(delay: .constant(.milliseconds(5))), seed: 14)
        #expect(steady == inOrder, "seed 14")
        let jittery = try arrivalOrder(
            LinkConditions(delay: .uniform(minimum: .milliseconds(1), maximum: .milliseconds(5))), seed: 15)
        #expect(jittery != inOrder && jittery.sorted() == inOrder, "seed 15")
        let heldBack = try arrivalOrder(
            LinkConditions(delay: .constant(.milliseconds(5)), reorderProbability: 0.1), seed: 16)
        #expect(heldBack != inOrder && heldBack.sorted() == inOrder, "seed 16")
    }

    @Test("a link override applies to its direction only, until removed")
    func overrides() throws {
        let network = SimulatedNetwork(seed: 17)
        let a = network.addNode()
        let b = network.addNode()
        let slow = LinkConditions(delay: .constant(.milliseconds(50)))
        try network.setConditions(slow, from: a, to: b)
        #expect(network.conditions(from: a, to: b) == slow)
        #expect(network.conditions(from: b, to: a) == LinkConditions())
        let atA = Inbox(a)
        let atB = Inbox(b)
        try a.send(number: 1, to: b)
        try b.send(number: 2, to: a)
        network.runUntilIdle()
        #expect(atB.messages.map(\.time) == [.at(.milliseconds(50))])
        #expect(atA.messages.map(\.time) == [.at(.milliseconds(1))])
        network.removeConditions(from: a, to: b)
        #expect(network.conditions(from: a, to: b) == LinkConditions())
    }

    @Test(
        "invalid conditions throw a typed error naming the field",
        arguments: [
            (LinkConditions(lossProbability: 1.5), "lossProbability"),
            (LinkConditions(duplicateProbability: -0.1), "duplicateProbability"),
            (LinkConditions(reorderProbability: .nan), "reorderProbability"),
            (LinkConditions(delay: .constant(.milliseconds(-1))), "delay"),
            (LinkConditions(delay: .uniform(minimum: .milliseconds(3), maximum: .milliseconds(2))), "delay.maximum"),
            (LinkConditions(delay: .exponential(mean: .seconds(-1), maximum: .seconds(1))), "delay.mean"),
            (LinkConditions(reorderDelay: .uniform(minimum: .seconds(-1), maximum: .zero)), "reorderDelay.minimum"),
        ])
    func invalidConditions(conditions: LinkConditions, field: String) throws {
        let network = SimulatedNetwork(seed: 18)
        let a = network.addNode()
        let b = network.addNode()
        let error = #expect(throws: ConfigurationError.self) {
            try network.setDefaultConditions(conditions)
        }
        #expect(error?.field == field)
        #expect(throws: ConfigurationError.self) {
            try network.setConditions(conditions, from: a, to: b)
        }
        #expect(network.defaultConditions == LinkConditions())
        #expect(network.conditions(from: a, to: b) == LinkConditions())
    }
}
