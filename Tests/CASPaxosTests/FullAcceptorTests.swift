import CASPaxos
import EventCore
import Simulation
import Testing

/// Acceptors with room for fewer registers than the keys clients use, in
/// the simulator: writes (blind, and compare-and-sets that create a key
/// only if absent) to new keys take the room of registers holding only a
/// promise (writes cut short), or are refused for room
/// (``CASPaxosError/Code/registersFull``), deletes and their collections
/// free room, an acceptor crashes and restarts meanwhile, and the link
/// loses, repeats and reorders messages. The history must be
/// linearizable, and every collection must complete: a full acceptor
/// promises a collection's prepare of a key it does not hold, and takes
/// its re-write of a tombstone, by raising its removal floor
/// (``CASPaxosMessage/collectionPrepare(requestID:key:ballot:age:version:)``,
/// ``CASPaxosMessage/rewriteTombstone(requestID:key:ballot:age:version:)``),
/// and a collection that finds a value written since the delete writes it
/// back to a quorum, not to every acceptor.
@Suite("Full acceptors under faults")
struct FullAcceptorTests {
    static let keys = (0..<8).map { Array("key-\($0)".utf8) }

    static var configuration: CASPaxosConfiguration {
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 4
        configuration.proposalTimeout = .milliseconds(300)
        configuration.maintenanceTimeout = .seconds(1)
        configuration.maintenanceRetryInterval = .milliseconds(20)
        return configuration
    }

    /// What one run saw.
    struct Run {
        var refusedForRoom = 0
        var collectionsStarted = 0
        var collections: [Result<Void, CASPaxosError>] = []
        var promisedByFloor = 0
        var promiseOnlyFolded = 0
    }

    static func run(
        seed: UInt64, configuration: CASPaxosConfiguration, fileStorage: Bool = false
    ) throws -> (SimulatedCASCluster, Run) {
        let cluster = try SimulatedCASCluster(
            seed: seed, fileStorage: fileStorage, link: LinearizabilityTests.faultyLink, configuration: configuration)
        var random = cluster.network.makeRandomGenerator()
        var run = Run()
        func startClient(_ client: Int, proposer: Int, remaining: Int) {
            guard remaining > 0 else { return }
            let pause = Duration.milliseconds(Int64.random(in: 0...20, using: &random))
            cluster.network.schedule(at: cluster.network.now + pause) { _ in
                let key = keys[Int.random(in: 0..<keys.count, using: &random)]
                let next: (Result<[UInt8]?, CASPaxosError>) -> Void = { result in
                    if case .failure(let error) = result, error.code == .registersFull { run.refusedForRoom += 1 }
                    startClient(client, proposer: proposer, remaining: remaining - 1)
                }
                let value: [UInt8] = [UInt8(truncatingIfNeeded: client), UInt8(truncatingIfNeeded: remaining)]
                switch Int.random(in: 0..<4, using: &random) {
                case 0:
                    cluster.perform(.read, key: key, client: client, proposer: proposer, then: next)
                case 1:
                    cluster.perform(.write(value), key: key, client: client, proposer: proposer, then: next)
                case 2:
                    // Created only if absent: what a promise lost from a
                    // full acceptor would let two proposers both do.
                    cluster.perform(
                        .compareAndSet(expected: nil, new: value), key: key, client: client, proposer: proposer, then: next)
                default:
                    cluster.delete(
                        key, client: client, proposer: proposer, collected: { run.collections.append($0) },
                        then: { result in
                            // A delete that succeeded or may have collects.
                            if case .failure(let error) = result, !error.isIndeterminate {} else {
                                run.collectionsStarted += 1
                            }
                            next(result)
                        })
                }
            }
        }
        for index in 0..<6 { startClient(index, proposer: index % 2, remaining: 25) }
        // An acceptor crashes and comes back (its store kept), cutting
        // collections short on it.
        let down = cluster.acceptorNodes[Int(seed % 3)]
        cluster.network.schedule(at: cluster.network.now + .milliseconds(150)) { $0.crash(down) }
        cluster.network.schedule(at: cluster.network.now + .milliseconds(400)) { $0.restart(down) }
        cluster.network.run(for: .seconds(8))
        run.promisedByFloor = cluster.acceptors.reduce(0) { $0 + ($1?.counters.acceptor.promisesByFloor ?? 0) }
        run.promiseOnlyFolded = cluster.acceptors.reduce(0) {
            $0 + ($1?.counters.acceptor.promiseOnlyRegistersFolded ?? 0)
        }
        return (cluster, run)
    }

    /// With file storage, the crashed acceptor restarts from its log: the
    /// floors it raised to promise and to take re-writes must be there.
    @Test(
        "writes refused for room, deletes and collections, an acceptor crashing: linearizable, and every collection completes",
        arguments: LinearizabilityTests.seeds(1...20).map { ($0, false) } + LinearizabilityTests.seeds(21...25).map { ($0, true) })
    func collectionsComplete(seed: UInt64, fileStorage: Bool) throws {
        let (cluster, run) = try Self.run(seed: seed, configuration: Self.configuration, fileStorage: fileStorage)
        #expect(cluster.unfinished == 0, "seed \(seed): \(cluster.unfinished) operations never ended")
        #expect(run.collections.count == run.collectionsStarted, "seed \(seed): \(run.collections.count) of \(run.collectionsStarted) collections ended")
        #expect(run.collections.allSatisfy { if case .success = $0 { true } else { false } }, "seed \(seed): \(run.collections)")
        for acceptor in cluster.acceptors {
            #expect((acceptor?.acceptor?.registerCount ?? 0) <= 4)
        }
        #expect(cluster.check() == .linearizable, "seed \(seed)")
    }

    /// The workload does reach what it is for, over its seeds: refusals for
    /// room, collections' prepares promised without a register, and
    /// promise-only registers (writes refused by full acceptors, or cut
    /// short, after their prepare) giving their room to new keys.
    @Test("the workload fills acceptors, promises collections' prepares without registers, and folds promise-only registers")
    func workloadReachesFullAcceptors() throws {
        var refused = 0
        var promised = 0
        var folded = 0
        for seed in UInt64(1)...5 {
            let (_, run) = try Self.run(seed: seed, configuration: Self.configuration)
            refused += run.refusedForRoom
            promised += run.promisedByFloor
            folded += run.promiseOnlyFolded
        }
        #expect(
            refused > 0 && promised > 0 && folded > 0,
            "refused \(refused), promised through the floor \(promised), promise-only registers folded \(folded)")
    }
}
