@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// Membership change (paper 2.3) and deletion with garbage collection
/// (paper 3.1), each under concurrent proposals, checked for
/// linearizability.
@Suite("Membership change and garbage collection")
struct MaintenanceTests {
    @Test("3 → 4 → 5 → 4 → 3 acceptors under concurrent proposals, loss and duplication", arguments: UInt64(1)...10)
    func membership(seed: UInt64) throws {
        let cluster = try SimulatedCASCluster(seed: seed, link: LinearizabilityTests.faultyLink)
        let keys = [Array("a".utf8), Array("b".utf8)]
        for key in keys { cluster.perform(.write([0]), key: key, client: 99, proposer: 0) }
        cluster.network.run(for: .milliseconds(50))
        cluster.startClients(clientsPerProposer: 2, operations: 12, keys: keys, thinkTime: .milliseconds(40))
        let original = cluster.acceptorNodes.map(\.localEndpoint)
        let fourth = cluster.addAcceptor().localEndpoint
        let fifth = cluster.addAcceptor().localEndpoint
        let targets = [original + [fourth], original + [fourth, fifth], original + [fourth], original]
        var results: [Result<Void, CASPaxosError>] = []
        func change(_ step: Int) {
            guard step < targets.count else { return }
            cluster.proposers[0].changeMembership(to: targets[step]) { result in
                results.append(result)
                change(step + 1)
            }
        }
        change(0)
        cluster.network.run(for: .seconds(5))
        #expect(results.count == 4, "seed \(seed)")
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } }, "seed \(seed): \(results)")
        #expect(cluster.proposers.allSatisfy { $0.proposer?.quorums == .majority(of: original, version: 9) })
        #expect(cluster.check() == .linearizable, "seed \(seed)")
    }

    @Test("a change's re-scan re-writes many keys a window at a time, every key, past the pending limit")
    func rescanWindow() throws {
        // Clients may have only 64 proposals pending; maintenance is not
        // held to that (a re-scan stopped by it once moved on with keys
        // never re-written).
        var configuration = CASPaxosConfiguration()
        configuration.maximumPendingProposals = 64
        let cluster = try SimulatedCASCluster(seed: 3, proposerCount: 1, configuration: configuration)
        let keys = (0..<(3 * Proposer.rewriteWindow)).map { Array("key-\($0)".utf8) }
        for (index, key) in keys.enumerated() {
            cluster.perform(.write([UInt8(index % 256)]), key: key, client: index, proposer: 0)
            if index % 64 == 63 { cluster.network.run(for: .milliseconds(20)) }
        }
        cluster.network.run(for: .milliseconds(200))
        #expect(cluster.succeeded == keys.count)
        let added = cluster.addAcceptor()
        var result: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: cluster.acceptorNodes.dropLast().map(\.localEndpoint) + [added.localEndpoint]) {
            result = $0
        }
        // The proposals in flight, looked at every 10 µs of virtual time.
        var mostPending = 0
        func watch() {
            cluster.network.schedule(at: cluster.network.now + .microseconds(10)) { _ in
                mostPending = max(mostPending, cluster.proposers[0].proposer?.pendingCount ?? 0)
                if result == nil { watch() }
            }
        }
        watch()
        cluster.network.run(for: .seconds(5))
        #expect(MembershipResumeTests.succeeded(result), "\(String(describing: result))")
        #expect(mostPending > Proposer.rewriteWindow / 2 && mostPending <= Proposer.rewriteWindow, "\(mostPending)")
        // Every key was re-written into the new acceptor.
        let newcomer = try #require(cluster.acceptors.last ?? nil)
        #expect(keys.allSatisfy { newcomer.acceptor?.register($0)?.value != nil })
    }

    @Test("deleted keys are collected on every acceptor while others write", arguments: UInt64(1)...10)
    func garbageCollection(seed: UInt64) throws {
        let cluster = try SimulatedCASCluster(seed: seed)
        let doomed = Array("doomed".utf8)
        cluster.perform(.write([1]), key: doomed, client: 99, proposer: 0)
        cluster.network.run(for: .milliseconds(50))
        cluster.startClients(clientsPerProposer: 2, operations: 8, keys: [Array("live".utf8)])
        var deleted: Result<[UInt8]?, CASPaxosError>?
        var collected: Result<Void, CASPaxosError>?
        let number = cluster.history.invoke(client: 96, key: doomed, input: .write(nil), at: cluster.network.now)
        cluster.proposers[1].delete(
            key: doomed,
            completion: { result in
                deleted = result
                if case .success(let value) = result {
                    cluster.history.complete(number, with: .ok(value), at: cluster.network.now)
                }
            },
            collected: { collected = $0 })
        cluster.network.run(for: .seconds(3))
        #expect(deleted.map { if case .success(nil) = $0 { true } else { false } } == true, "seed \(seed)")
        #expect(collected.map { if case .success = $0 { true } else { false } } == true, "seed \(seed): \(String(describing: collected))")
        for acceptor in cluster.acceptors {
            #expect(acceptor?.acceptor?.register(doomed) == nil, "seed \(seed): the register survived")
        }
        // After collection the key reads as empty and can be written again.
        cluster.perform(.read, key: doomed, client: 98, proposer: 0)
        cluster.network.run(for: .milliseconds(200))
        cluster.perform(.write([2]), key: doomed, client: 98, proposer: 0)
        cluster.network.run(for: .milliseconds(200))
        cluster.perform(.read, key: doomed, client: 97, proposer: 1)
        cluster.network.run(for: .milliseconds(200))
        #expect(cluster.history.operations.last?.outcome == .ok([2]), "seed \(seed)")
        #expect(cluster.check() == .linearizable, "seed \(seed)")
    }

    @Test("writers on the very key being deleted; an acceptor down makes the collection start over", arguments: UInt64(1)...10)
    func garbageCollectionOfContendedKey(seed: UInt64) throws {
        var configuration = CASPaxosConfiguration()
        configuration.proposalTimeout = .milliseconds(300)
        configuration.maintenanceTimeout = .seconds(1)
        configuration.maintenanceRetryInterval = .milliseconds(20)
        let cluster = try SimulatedCASCluster(
            seed: seed, link: LinearizabilityTests.faultyLink, configuration: configuration)
        let doomed = Array("doomed".utf8)
        cluster.perform(.write([1]), key: doomed, client: 99, proposer: 0)
        cluster.network.run(for: .milliseconds(50))
        cluster.startClients(clientsPerProposer: 2, operations: 10, keys: [doomed], thinkTime: .milliseconds(30))
        var collections: [Result<Void, CASPaxosError>] = []
        let down = cluster.acceptorNodes[2]
        let number = cluster.history.invoke(client: 96, key: doomed, input: .write(nil), at: cluster.network.now)
        cluster.proposers[1].delete(
            key: doomed,
            completion: { result in
                switch result {
                case .success(let value): cluster.history.complete(number, with: .ok(value), at: cluster.network.now)
                case .failure: cluster.history.complete(number, with: .unknown, at: cluster.network.now)
                }
                // The collection's re-write needs every acceptor: it fails
                // until this one is back.
                cluster.network.crash(down)
                cluster.network.schedule(at: cluster.network.now + .milliseconds(500)) { $0.restart(down) }
            },
            collected: { collections.append($0) })
        cluster.network.run(for: .seconds(4))
        #expect(collections.count == 1, "seed \(seed): \(collections)")
        #expect(collections.allSatisfy { if case .success = $0 { true } else { false } }, "seed \(seed)")
        #expect((cluster.proposers[1].proposer?.counters.maintenanceRestarts ?? 0) > 0, "seed \(seed)")
        #expect(cluster.check() == .linearizable, "seed \(seed)")

        // With the writers done, a last delete frees the key everywhere (a
        // client retries a delete that ended indeterminate).
        var collected: Result<Void, CASPaxosError>?
        func deleteAgain(_ attempt: Int) {
            let number = cluster.history.invoke(client: 95, key: doomed, input: .write(nil), at: cluster.network.now)
            cluster.proposers[0].delete(
                key: doomed,
                completion: { result in
                    switch result {
                    case .success(let value): cluster.history.complete(number, with: .ok(value), at: cluster.network.now)
                    case .failure:
                        cluster.history.complete(number, with: .unknown, at: cluster.network.now)
                        if attempt < 5 { deleteAgain(attempt + 1) }
                    }
                },
                collected: { collected = $0 })
        }
        deleteAgain(1)
        cluster.network.run(for: .seconds(2))
        #expect(collected.map { if case .success = $0 { true } else { false } } == true, "seed \(seed)")
        for acceptor in cluster.acceptors {
            #expect(acceptor?.acceptor?.register(doomed) == nil, "seed \(seed): the register survived")
        }
        cluster.perform(.read, key: doomed, client: 94, proposer: 1)
        cluster.network.run(for: .milliseconds(300))
        #expect(cluster.history.operations.last?.outcome == .ok(nil), "seed \(seed)")
        #expect(cluster.check() == .linearizable, "seed \(seed)")
    }
}
