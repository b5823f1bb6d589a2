#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EventCore
import SWIM
import Simulation

/// What one run does: how many members, how they join, the link loss, how
/// many crashes, and how long it goes on.
struct SWIMScenario {
    var memberCount: Int
    /// The members after the first join through it over this span.
    var joinSpread: Duration
    /// Every link's loss probability (links delay 1 ms).
    var lossProbability = 0.0
    /// Members crashed one after the other once the steady state was
    /// measured, each after the previous one was known dead by all.
    var crashes = 5
    /// The quiet time after convergence, before the steady state is
    /// measured (the join updates die out).
    var settling: Duration = .seconds(10)
    /// The shortest steady state measured; the window is stretched to one
    /// push-pull period when that is longer (see `SWIMSimulationRun.steadyStateWindow`).
    var minimumSteadyStateWindow: Duration = .seconds(60)
    /// If set, the run goes on (quietly) until this much simulated time has
    /// passed since the start, counting false positives.
    var totalDuration: Duration?
    var seed: UInt64

    /// How long convergence and each detection may take before the run
    /// counts a timeout and goes on.
    var convergenceLimit: Duration = .seconds(120)
    var detectionLimit: Duration = .seconds(60)
}

/// One simulated SWIM cluster run, measured: `memberCount` members with
/// IDs 1 ... N join through member 0 over `joinSpread` (1 ms links), the
/// run waits for every member to see every member alive, lets the join
/// traffic die out, measures the steady state's packets and bytes, then
/// crashes members one at a time and times their detection. Every dead
/// declaration about a member that was not crashed is a false positive.
final class SWIMSimulationRun {
    let scenario: SWIMScenario
    let configuration: SWIMConfiguration
    let network: SimulatedNetwork
    private var nodes: [SimulatedNode] = []
    private var transports: [CountingTransport] = []
    private var members: [SWIMNode?] = []
    private var crashed: Set<Int> = []
    private var lastJoinAt: Instant = .zero

    /// Dead declarations about one crashed member.
    private struct Detection {
        var crashedAt: Instant
        var first: Instant?
        var last: Instant?
        var observers: Set<Int> = []
    }
    private var detections: [Int: Detection] = [:]
    private var falsePositives = 0
    private var liveSuspicions = 0

    private let tracing: Bool
    private let clock = ContinuousClock()
    private var startedAt: ContinuousClock.Instant

    init(scenario: SWIMScenario, profile: SWIMProfile) {
        self.scenario = scenario
        configuration = profile.configuration
        network = SimulatedNetwork(seed: scenario.seed)
        tracing = getenv("CHORUS_SWIM_BENCH_TRACE") != nil
        startedAt = clock.now
        do {
            try network.setDefaultConditions(LinkConditions(lossProbability: scenario.lossProbability))
        } catch {
            fatalError("invalid link conditions: \(error)")
        }
        let count = scenario.memberCount
        nodes = (0..<count).map { _ in network.addNode() }
        transports = nodes.map { CountingTransport($0) }
        members = Array(repeating: nil, count: count)
        start(0, seeds: [])
        let seedEndpoint = nodes[0].localEndpoint
        for index in 1..<count {
            let at = Instant.zero + scenario.joinSpread * (Double(index) / Double(count))
            lastJoinAt = max(lastJoinAt, at)
            network.schedule(at: at) { [unowned self] _ in self.start(index, seeds: [seedEndpoint]) }
        }
    }

    private func start(_ index: Int, seeds: [Endpoint]) {
        let member: SWIMNode
        do {
            member = try SWIMNode(
                id: NodeID(UInt64(index) + 1), transport: transports[index], scheduler: nodes[index],
                configuration: configuration, seed: scenario.seed &+ UInt64(index) &* 0x9E37_79B9)
        } catch {
            fatalError("invalid SWIM configuration: \(error)")
        }
        member.setEventHandler { [unowned self] event in
            switch event.kind {
            case .dead: self.recordDeath(event, observer: index)
            case .suspect:
                if !self.crashed.contains(Int(event.member.id.rawValue) - 1) { self.liveSuspicions += 1 }
            default: break
            }
        }
        member.start(seeds: seeds)
        members[index] = member
    }

    private func recordDeath(_ event: MemberEvent, observer: Int) {
        let subject = Int(event.member.id.rawValue) - 1
        guard var detection = detections[subject] else {
            falsePositives += 1
            return
        }
        if detection.observers.insert(observer).inserted {
            detection.first = min(detection.first ?? event.at, event.at)
            detection.last = max(detection.last ?? event.at, event.at)
            detections[subject] = detection
        }
    }

    /// The steady state is measured over one push-pull period (at least
    /// ``SWIMScenario/minimumSteadyStateWindow``): every member then starts
    /// exactly one push-pull in the window, so the rates are the long-run
    /// average. A fixed 60 s window would hold one round of push-pulls or
    /// none depending on when the cluster converged (the first round comes
    /// 30 s after each join, the next one a scaled period later). The
    /// period is scaled as `SWIMInstance` does (memberlist's rule):
    /// `× (⌈log₂(N / 32)⌉ + 1)` above 32 members.
    private var steadyStateWindow: Duration {
        var period = configuration.pushPullInterval
        let size = liveCount
        if size > 32 {
            let scale = Int((log2(Double(size)) - log2(32)).rounded(.up)) + 1
            period = period * scale
        }
        return max(period, scenario.minimumSteadyStateWindow)
    }

    private var liveCount: Int { scenario.memberCount - crashed.count }

    /// Whether every live member sees every live member alive.
    private func isConverged() -> Bool {
        let expected = liveCount
        return members.allSatisfy { member in member.map { $0.memberCount(.alive) == expected } ?? true }
    }

    /// Runs until `condition` holds (checked every `step`) or `limit`
    /// passes; returns the simulated time it held at, or nil.
    private func run(until condition: () -> Bool, step: Duration = .milliseconds(10), limit: Duration) -> Instant? {
        let end = network.now + limit
        while network.now < end {
            if condition() { return network.now }
            network.run(for: step)
        }
        return condition() ? network.now : nil
    }

    /// For tracing: how far from convergence the members are.
    private func convergenceSummary() -> String {
        let counts = members.compactMap { $0?.memberCount(.alive) }
        let short = counts.filter { $0 < liveCount }
        return "\(short.count) members see fewer than \(liveCount) alive (fewest: \(counts.min() ?? 0))"
    }

    private func total(_ value: (SWIMNode) -> Int) -> Int {
        members.reduce(0) { sum, member in sum + (member.map(value) ?? 0) }
    }

    private func trace(_ what: @autoclosure () -> String) {
        guard tracing else { return }
        let wall = clock.now - startedAt
        var line = "swim-bench N=\(scenario.memberCount) sim \(network.now) wall \(wall) rss \(Self.residentMegabytes()) MB: \(what())\n"
        line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }

    /// The process's resident memory, from /proc/self/statm (0 elsewhere).
    private static func residentMegabytes() -> Int {
        let descriptor = open("/proc/self/statm", O_RDONLY)
        guard descriptor >= 0 else { return 0 }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return 0 }
        let fields = String(decoding: buffer[..<count], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return (pages * Int(sysconf(Int32(_SC_PAGESIZE)))) >> 20
    }

    /// What a run measured; times are simulated milliseconds, rates in
    /// thousandths.
    struct Outcome {
        /// From the last member's join until all see all alive.
        var convergenceMilliseconds: Int
        /// Crash to the first member declaring it dead: mean and max.
        var firstDetectionMeanMilliseconds: Int
        var firstDetectionMaximumMilliseconds: Int
        /// Crash to every live member declaring it dead: mean and max.
        var allDetectionMeanMilliseconds: Int
        var allDetectionMaximumMilliseconds: Int
        /// Dead declarations about members that were alive.
        var falsePositives: Int
        /// Suspicions raised about members that were alive (refuted).
        var liveSuspicions: Int
        /// Steady state, per member per second, in thousandths.
        var milliPacketsPerMemberPerSecond: Int
        var milliBytesPerMemberPerSecond: Int
        /// The share of those bytes spent on push-pull (anti-entropy).
        var milliPushPullBytesPerMemberPerSecond: Int
        /// Convergences and detections that did not finish within their
        /// limit (their times are then the limit: lower bounds).
        var timeouts: Int
    }

    func run() -> Outcome {
        startedAt = clock.now
        var timeouts = 0
        var victims = SeededRandomGenerator(seed: scenario.seed ^ 0x5EED_C8A5)

        network.run(until: lastJoinAt)
        trace("last member joined; \(convergenceSummary())")
        let convergence: Duration
        var nextReport = network.now + .seconds(1)
        let converged = run(until: {
            if tracing && network.now >= nextReport {
                nextReport = network.now + .seconds(1)
                trace(convergenceSummary())
            }
            return isConverged()
        }, limit: scenario.convergenceLimit)
        if let at = converged {
            convergence = at - lastJoinAt
        } else {
            convergence = scenario.convergenceLimit
            timeouts += 1
        }
        trace("converged after \(convergence); \(convergenceSummary()); "
              + "\(total { $0.counters.membershipUpdatesDropped }) membership updates dropped from full queues; "
              + "\(network.statistics)")

        network.run(for: scenario.settling)
        let packets = total { $0.packetsSent }
        let bytes = total { $0.bytesSent }
        let pushPullBytes = transports.reduce(0) { $0 + $1.pushPullBytes }
        let window = steadyStateWindow
        network.run(for: window)
        let perMember = Double(liveCount) * Double(window.nanoseconds) / 1e9
        let packetRate = Double(total { $0.packetsSent } - packets) / perMember
        let byteRate = Double(total { $0.bytesSent } - bytes) / perMember
        let pushPullByteRate = Double(transports.reduce(0) { $0 + $1.pushPullBytes } - pushPullBytes) / perMember
        trace("steady state over \(window): \(packetRate) packets, \(byteRate) bytes (push-pull \(pushPullByteRate)) per member per second")

        var firsts: [Duration] = []
        var alls: [Duration] = []
        for _ in 0..<scenario.crashes {
            // Crash at a random point of the probe cycle.
            network.run(for: .milliseconds(Int64.random(in: 0..<1_000, using: &victims)))
            var victim = 0
            repeat {
                victim = Int.random(in: 1..<scenario.memberCount, using: &victims)
            } while crashed.contains(victim)
            crashed.insert(victim)
            detections[victim] = Detection(crashedAt: network.now)
            members[victim]?.stop()
            members[victim] = nil
            network.crash(nodes[victim])
            let crashedAt = network.now
            let everyone = run(until: { (detections[victim]?.observers.count ?? 0) >= liveCount },
                               limit: scenario.detectionLimit)
            let detection = detections[victim]!
            firsts.append((detection.first ?? network.now) - crashedAt)
            if everyone != nil, let last = detection.last {
                alls.append(last - crashedAt)
            } else {
                alls.append(scenario.detectionLimit)
                timeouts += 1
            }
            trace("member \(victim) crashed: first \(firsts.last!), all \(alls.last!)")
            // Let the news die out before the next crash.
            network.run(for: .seconds(5))
        }
        if let totalDuration = scenario.totalDuration, network.now < .zero + totalDuration {
            network.run(until: .zero + totalDuration)
        }
        if !isConverged() { timeouts += 1 }
        trace("done: \(falsePositives) false positives, \(liveSuspicions) suspicions of live members")

        func milliseconds(_ duration: Duration) -> Int { Int(duration.nanoseconds / 1_000_000) }
        func mean(_ durations: [Duration]) -> Int {
            durations.isEmpty ? 0 : durations.map(milliseconds).reduce(0, +) / durations.count
        }
        return Outcome(
            convergenceMilliseconds: milliseconds(convergence),
            firstDetectionMeanMilliseconds: mean(firsts),
            firstDetectionMaximumMilliseconds: firsts.map(milliseconds).max() ?? 0,
            allDetectionMeanMilliseconds: mean(alls),
            allDetectionMaximumMilliseconds: alls.map(milliseconds).max() ?? 0,
            falsePositives: falsePositives,
            liveSuspicions: liveSuspicions,
            milliPacketsPerMemberPerSecond: Int((packetRate * 1_000).rounded()),
            milliBytesPerMemberPerSecond: Int((byteRate * 1_000).rounded()),
            milliPushPullBytesPerMemberPerSecond: Int((pushPullByteRate * 1_000).rounded()),
            timeouts: timeouts)
    }
}
