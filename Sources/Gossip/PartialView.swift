import EventCore

/// HyParView's two views of a node (Leitão, Pereira, Rodrigues, 2007): a
/// small symmetric *active* view of neighbours that carry traffic and are
/// watched for failure, and a larger *passive* view of standby peers that
/// replace failed neighbours. Both are bounded; neither holds the node
/// itself, and no peer is in both.
struct PartialView {
    let selfEndpoint: Endpoint
    let activeCapacity: Int
    let passiveCapacity: Int
    private(set) var active: [Endpoint] = []
    private(set) var passive: [Endpoint] = []

    init(selfEndpoint: Endpoint, activeCapacity: Int, passiveCapacity: Int) {
        self.selfEndpoint = selfEndpoint
        self.activeCapacity = activeCapacity
        self.passiveCapacity = passiveCapacity
    }

    var isActiveFull: Bool { active.count >= activeCapacity }

    func isActive(_ peer: Endpoint) -> Bool { active.contains(peer) }

    func isPassive(_ peer: Endpoint) -> Bool { passive.contains(peer) }

    /// Adds `peer` to the active view (taking it out of the passive one).
    /// If the view is full, a random other neighbour makes room and is
    /// returned: the caller tells it and moves it to the passive view.
    mutating func addActive(_ peer: Endpoint, using random: inout SeededRandomGenerator) -> (added: Bool, evicted: Endpoint?) {
        guard peer != selfEndpoint, !active.contains(peer) else { return (false, nil) }
        var evicted: Endpoint?
        if isActiveFull, let index = active.indices.randomElement(using: &random) {
            evicted = active.remove(at: index)
        }
        active.append(peer)
        removePassive(peer)
        return (true, evicted)
    }

    /// Removes `peer` from the active view; false if it was not there.
    @discardableResult
    mutating func removeActive(_ peer: Endpoint) -> Bool {
        guard let index = active.firstIndex(of: peer) else { return false }
        active.remove(at: index)
        return true
    }

    /// Adds `peer` to the passive view unless it is this node or active;
    /// if the view is full, a random entry makes room, preferring one of
    /// `preferredEvictions` (the entries this node just sent in a shuffle).
    mutating func addPassive(
        _ peer: Endpoint, preferringToEvict preferredEvictions: [Endpoint] = [],
        using random: inout SeededRandomGenerator
    ) {
        guard peer != selfEndpoint, !active.contains(peer), !passive.contains(peer) else { return }
        if passive.count >= passiveCapacity {
            if let index = passive.firstIndex(where: preferredEvictions.contains) {
                passive.remove(at: index)
            } else if let index = passive.indices.randomElement(using: &random) {
                passive.remove(at: index)
            }
        }
        passive.append(peer)
    }

    mutating func removePassive(_ peer: Endpoint) {
        if let index = passive.firstIndex(of: peer) { passive.remove(at: index) }
    }

    /// Up to `count` distinct entries of `view`, at random, none in `excluded`.
    static func sample(
        _ view: [Endpoint], count: Int, excluding excluded: [Endpoint] = [],
        using random: inout SeededRandomGenerator
    ) -> [Endpoint] {
        guard count > 0 else { return [] }
        var candidates = excluded.isEmpty ? view : view.filter { !excluded.contains($0) }
        guard candidates.count > count else { return candidates }
        // Partial Fisher-Yates: the first `count` places get a random pick.
        for index in 0..<count {
            candidates.swapAt(index, Int.random(in: index..<candidates.count, using: &random))
        }
        return Array(candidates[..<count])
    }

    /// One random active neighbour not in `excluded`.
    func randomActive(excluding excluded: [Endpoint] = [], using random: inout SeededRandomGenerator) -> Endpoint? {
        Self.sample(active, count: 1, excluding: excluded, using: &random).first
    }
}

extension Endpoint {
    /// A fixed total order (family, address, port), for deterministic
    /// iteration over endpoints kept in a dictionary.
    static func precedes(_ lhs: Endpoint, _ rhs: Endpoint) -> Bool {
        func key(_ endpoint: Endpoint) -> (UInt8, UInt64, UInt64, UInt16) {
            switch endpoint.address {
            case .ipv4(let value): (4, 0, UInt64(value), endpoint.port)
            case .ipv6(let high, let low): (6, high, low, endpoint.port)
            }
        }
        return key(lhs) < key(rhs)
    }
}
