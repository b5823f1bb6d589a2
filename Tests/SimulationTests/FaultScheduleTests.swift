import EventCore
import Simulation
import Testing

@Suite("Forced faults and schedule exploration")
struct FaultScheduleTests {
    @Test("a schedule drops, delays and duplicates exactly the messages it names, on lossy links too")
    func forcedFaults() throws {
        let network = SimulatedNetwork(seed: 5)
        // Every message would be lost: forced faults replace the draws.
        try network.setDefaultConditions(LinkConditions(lossProbability: 1))
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        network.force(
            FaultSchedule([
                (message: 3, fault: .duplicate(after: .milliseconds(9))), (message: 1, fault: .delay(.milliseconds(5))),
                (message: 2, fault: .drop),
            ]))
        for number in 1...4 { try a.send(number: UInt8(number), to: b) }
        network.runUntilIdle()
        #expect(inbox.messages.map(\.bytes) == [[3], [1], [3]])
        #expect(inbox.messages.map(\.time) == [.at(.milliseconds(1)), .at(.milliseconds(5)), .at(.milliseconds(9))])
        #expect(network.statistics.droppedByLoss == 2)
        #expect(network.statistics.duplicated == 1)
    }

    @Test("a crash fault crashes the sender instead of sending, and restarts it later")
    func crashFault() throws {
        let network = SimulatedNetwork(seed: 5)
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        var restarts: [Instant] = []
        a.onRestart = { node in restarts.append(node.network.now) }
        network.force(FaultSchedule([(message: 2, fault: .crashSender(restartAfter: .milliseconds(5)))]))
        try a.send(number: 1, to: b)
        try a.send(number: 2, to: b)
        #expect(a.isCrashed)
        #expect(throws: TransportError.self) { try a.send(number: 3, to: b) }
        network.runUntilIdle()
        #expect(!a.isCrashed && restarts == [.at(.milliseconds(5))])
        try a.send(number: 4, to: b)
        network.runUntilIdle()
        #expect(inbox.firstBytes == [1, 4])
        #expect(network.statistics.droppedByCrash == 1)
    }

    /// A crash point is the sender's, wherever the message was going: to
    /// a partitioned peer, to an address no node has, to an empty group.
    @Test("a crash fault crashes the sender even when its message could not have been delivered")
    func crashFaultOnUnreachableDestination() throws {
        let network = SimulatedNetwork(seed: 5)
        let a = network.addNode()
        let b = network.addNode()
        network.partition([a], [b])
        let nowhere = try Endpoint(parsing: "10.99.0.1:9")
        network.force(
            FaultSchedule([
                (message: 1, fault: .crashSender(restartAfter: .milliseconds(5))),
                (message: 2, fault: .crashSender(restartAfter: .milliseconds(5))),
            ]))
        try a.send(number: 1, to: b)
        #expect(a.isCrashed, "the partition hid the crash point")
        network.run(for: .milliseconds(10))
        #expect(!a.isCrashed)
        try [UInt8(2)].withUnsafeBytes { try a.send($0, to: nowhere) }
        #expect(a.isCrashed, "an address no node has hid the crash point")
        #expect(network.statistics.droppedByCrash == 2)
    }

    @Test("schedules list their faults by message, a later fault on a message replacing an earlier one")
    func scheduleOrder() {
        let schedule = FaultSchedule().adding(.drop, toMessage: 9).adding(.delay(.seconds(1)), toMessage: 4)
            .adding(.duplicate(after: .seconds(2)), toMessage: 9)
        #expect(schedule.faults.map(\.message) == [4, 9])
        #expect(schedule == FaultSchedule([(4, .delay(.seconds(1))), (9, .duplicate(after: .seconds(2)))]))
        #expect(schedule.lastMessage == 9)
        #expect(schedule.description == "message 4: delay 1.0 seconds, message 9: duplicate after 2.0 seconds")
        #expect(FaultSchedule().description == "no forced fault")
    }

    /// A node sends 1 ... 5 to another, which must receive them in order,
    /// each once; a run reports messages 2 ... 4 as eligible.
    private static func inOrderDelivery(_ schedule: FaultSchedule) throws -> FaultScheduleExplorer.Run {
        let network = SimulatedNetwork(seed: 1)
        network.force(schedule)
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        for number in 1...5 {
            try a.send(number: UInt8(number), to: b)
            network.run(for: .microseconds(100))
        }
        network.runUntilIdle()
        let received = inbox.firstBytes
        return FaultScheduleExplorer.Run(
            eligibleMessages: 2...4, failure: received == [1, 2, 3, 4, 5] ? nil : "received \(received)")
    }

    @Test("the explorer runs every schedule up to its depth, on eligible messages only, and reports the failing ones")
    func exploration() throws {
        let faults: [MessageFault] = [.drop, .delay(.milliseconds(2))]
        // Depth 1: the run without faults, then 2 faults × 3 messages;
        // every forced fault breaks in-order delivery.
        let single = try FaultScheduleExplorer(faults: faults, depth: 1).explore(Self.inOrderDelivery)
        #expect(single.runs == 7)
        #expect(single.failures.count == 6)
        #expect(single.failures.first?.schedule == FaultSchedule([(2, .drop)]))
        #expect(single.failures.first?.failure == "received [1, 3, 4, 5]")
        #expect(single.failures.last?.schedule == FaultSchedule([(4, .delay(.milliseconds(2)))]))
        #expect(single.failures.last?.failure == "received [1, 2, 3, 5, 4]")
        #expect(!single.isTruncated)

        // A failing schedule is not extended; a budget truncates.
        let budget = try FaultScheduleExplorer(faults: faults, depth: 2, maximumRuns: 4).explore(Self.inOrderDelivery)
        #expect(budget.runs == 4 && budget.isTruncated)
        let capped = try FaultScheduleExplorer(faults: faults, depth: 1, maximumFailures: 2).explore(Self.inOrderDelivery)
        #expect(capped.runs == 3 && capped.failures.count == 2 && !capped.isTruncated)
    }

    @Test("at depth 2 every pair of faults on distinct messages runs once, in message order")
    func pairs() throws {
        var schedules: [FaultSchedule] = []
        let report = FaultScheduleExplorer(faults: [.drop, .delay(.seconds(1))], depth: 2).explore { schedule in
            schedules.append(schedule)
            return FaultScheduleExplorer.Run(eligibleMessages: 1...3, failure: nil)
        }
        // 1 + 2·3 singles + 4·3 pairs (messages 1-2, 1-3, 2-3).
        #expect(report.runs == 19 && schedules.count == 19)
        #expect(Set(schedules).count == 19)
        #expect(schedules.allSatisfy { $0.faults.count <= 2 })
        #expect(schedules.prefix(3) == [FaultSchedule(), FaultSchedule([(1, .drop)]), FaultSchedule([(1, .drop), (2, .drop)])])
    }
}
