import EventCore

// Forced faults, partitions and crashes.
//
// A blocked link is checked twice: when a message is sent (it is dropped at
// once) and when a copy arrives (copies already in flight when the link was
// blocked are dropped too). A copy sent before a heal and arriving after it
// is delivered. Crashes are checked at arrival: a copy reaching a crashed
// node is dropped, one reaching it after its restart is delivered, unless
// the node sent it itself before the crash (it never left the node's
// sockets, which the crash closed).
extension SimulatedNetwork {
    /// Forces `schedule`'s faults on the messages it names (by number:
    /// message n is the n-th sent since the network was created), in place
    /// of their links' loss, duplication and delay draws; replaces any
    /// schedule forced before. A partition still drops a forced message.
    /// Call before the messages are sent, usually right after creating the
    /// network.
    public func force(_ schedule: FaultSchedule) {
        forcedFaults = Dictionary(uniqueKeysWithValues: schedule.faults.map { ($0.message, $0.fault) })
    }

    /// Blocks every link between the two groups, in both directions. Links
    /// within a group are unaffected; call again to cut more links.
    ///
    /// - Precondition: every node belongs to this network.
    public func partition(_ groupA: [SimulatedNode], _ groupB: [SimulatedNode]) {
        for a in groupA {
            for b in groupB {
                block(from: a, to: b)
                block(from: b, to: a)
            }
        }
    }

    /// Blocks the directed link from `source` to `destination`: messages
    /// that way are dropped, those the other way still pass (a one-way
    /// partition).
    ///
    /// - Precondition: both nodes belong to this network.
    public func block(from source: SimulatedNode, to destination: SimulatedNode) {
        blockedLinks.insert(linkKey(source, destination))
    }

    /// Unblocks the directed link from `source` to `destination` (the other
    /// direction stays as it is).
    ///
    /// - Precondition: both nodes belong to this network.
    public func unblock(from source: SimulatedNode, to destination: SimulatedNode) {
        blockedLinks.remove(linkKey(source, destination))
    }

    /// Unblocks every link: ends all partitions.
    public func heal() {
        blockedLinks.removeAll()
    }

    /// Whether the directed link from `source` to `destination` is blocked.
    ///
    /// - Precondition: both nodes belong to this network.
    public func isBlocked(from source: SimulatedNode, to destination: SimulatedNode) -> Bool {
        blockedLinks.contains(linkKey(source, destination))
    }

    /// Crashes `node`: its receive handler is removed, its pending timers are
    /// discarded, copies arriving while it is down are dropped
    /// (``SimulationStatistics/droppedByCrash``), and its `send` throws
    /// `TransportError.Code.closed`. Messages it sent other nodes before are
    /// already on the wire and still arrive; those it sent itself (to its
    /// own endpoint, or to a group it belongs to) never left its sockets
    /// and are dropped, even after a restart. It leaves every multicast group, as a
    /// process that ends closes its sockets: restarted, it must join again.
    /// Does nothing if it is already crashed.
    ///
    /// - Precondition: `node` belongs to this network.
    public func crash(_ node: SimulatedNode) {
        precondition(node.network === self, "the node belongs to another SimulatedNetwork")
        guard !node.isCrashed else { return }
        node.isCrashed = true
        node.crashes &+= 1
        node.receiveHandler = nil
        discardTimers(of: Int32(node.index))
        for group in multicastGroups.keys { multicastGroups[group]?.removeAll { $0 == Int32(node.index) } }
        if recorder.isEnabled { record(.crash(node: node.localEndpoint)) }
        node.onCrash?(node)
    }

    /// Restarts a crashed `node` at the same endpoint and then runs its
    /// ``SimulatedNode/onRestart`` hook, where the user re-creates the driver
    /// (from state they kept outside the node, standing for durable storage:
    /// nothing else survives a crash). Does nothing if the node is not
    /// crashed.
    ///
    /// - Precondition: `node` belongs to this network.
    public func restart(_ node: SimulatedNode) {
        precondition(node.network === self, "the node belongs to another SimulatedNetwork")
        guard node.isCrashed else { return }
        node.isCrashed = false
        if recorder.isEnabled { record(.restart(node: node.localEndpoint)) }
        node.onRestart?(node)
    }
}
