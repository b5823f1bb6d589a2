import EventCore

/// A map from the few replicas of a group to a value, used where a
/// `Dictionary` keyed by `NodeID` was: a leader looks up a follower's
/// progress several times per message, and a linear search over a handful
/// of IDs costs far less than hashing one. It offers the subset of
/// `Dictionary`'s interface the replica uses (the empty literal, the
/// optional subscript, ``removeValue(forKey:)``, ``keys``, ``values``,
/// ``count``, ``isEmpty``; the order of entries is not meaningful), and
/// slots: ``slot(of:)`` finds a peer's, and ``subscript(slot:)`` reads or
/// changes its value in place, so changing a value that holds a
/// copy-on-write buffer (a follower's inflight window) does not copy the
/// buffer, as reading the value out and setting it back would. A slot
/// stays valid until an entry is added or removed.
struct PeerMap<Value>: ExpressibleByDictionaryLiteral {
    private var peers: [NodeID] = []
    /// The value of `peers[i]`.
    private var slots: [Value] = []

    init() {}

    init(dictionaryLiteral elements: (NodeID, Value)...) {
        for (peer, value) in elements { self[peer] = value }
    }

    /// The slot of `peer`'s value, if it has one.
    func slot(of peer: NodeID) -> Int? {
        var slot = 0
        while slot < peers.count {
            if peers[slot] == peer { return slot }
            slot += 1
        }
        return nil
    }

    /// The value in `slot` (from ``slot(of:)``), read or changed in place.
    subscript(slot slot: Int) -> Value {
        _read { yield slots[slot] }
        _modify { yield &slots[slot] }
    }

    /// The value of `peer`, if any; setting nil removes it.
    subscript(peer: NodeID) -> Value? {
        get {
            guard let slot = slot(of: peer) else { return nil }
            return slots[slot]
        }
        set {
            if let slot = slot(of: peer) {
                if let newValue {
                    slots[slot] = newValue
                } else {
                    peers.remove(at: slot)
                    slots.remove(at: slot)
                }
            } else if let newValue {
                peers.append(peer)
                slots.append(newValue)
            }
        }
    }

    /// Removes and returns the value of `peer`, if any.
    @discardableResult
    mutating func removeValue(forKey peer: NodeID) -> Value? {
        guard let slot = slot(of: peer) else { return nil }
        peers.remove(at: slot)
        return slots.remove(at: slot)
    }

    var keys: [NodeID] { peers }
    var values: [Value] { slots }
    var count: Int { peers.count }
    var isEmpty: Bool { peers.isEmpty }
}
