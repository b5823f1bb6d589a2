import EventCore

/// Which acceptors a proposer asks in each phase and how many must answer:
/// the proposer's view of the cluster's membership.
///
/// Normally both phases use the same 2F+1 acceptors and a majority (F+1).
/// During a membership change the sets and quorum sizes differ (flexible
/// quorums): every prepare quorum must intersect every accept quorum, which
/// ``validate()`` checks (`prepareQuorum + acceptQuorum > |prepare ∪ accept|`).
/// ``version`` orders configurations, so a delayed or duplicated
/// reconfiguration never rolls a proposer back.
public struct AcceptorQuorums: Hashable, Sendable, CustomStringConvertible {
    /// Orders configurations: a proposer adopts only a higher version. At
    /// most ``maximumVersion``.
    public var version: UInt64

    /// The largest version (2^62): far beyond any number of membership
    /// changes, and low enough that a change's steps (up to three versions
    /// on) cannot overflow, whatever version a peer sends.
    public static let maximumVersion: UInt64 = 1 << 62
    /// The acceptors that get prepare messages.
    public var prepareAcceptors: [Endpoint]
    /// Promises needed from ``prepareAcceptors``.
    public var prepareQuorum: Int
    /// The acceptors that get accept messages.
    public var acceptAcceptors: [Endpoint]
    /// Acceptances needed from ``acceptAcceptors``.
    public var acceptQuorum: Int

    /// Creates a configuration; check it with ``validate()``.
    public init(
        version: UInt64, prepareAcceptors: [Endpoint], prepareQuorum: Int, acceptAcceptors: [Endpoint],
        acceptQuorum: Int
    ) {
        self.version = version
        self.prepareAcceptors = prepareAcceptors
        self.prepareQuorum = prepareQuorum
        self.acceptAcceptors = acceptAcceptors
        self.acceptQuorum = acceptQuorum
    }

    /// Both phases to all of `acceptors`, each needing a majority.
    public static func majority(of acceptors: [Endpoint], version: UInt64 = 1) -> AcceptorQuorums {
        let quorum = acceptors.count / 2 + 1
        return AcceptorQuorums(
            version: version, prepareAcceptors: acceptors, prepareQuorum: quorum, acceptAcceptors: acceptors,
            acceptQuorum: quorum)
    }

    /// Whether `other` is this configuration: the same version, acceptors
    /// and quorum sizes, the acceptors in any order (`==` compares the
    /// lists as given, and operators list them in their own order).
    func isSameConfiguration(as other: AcceptorQuorums) -> Bool {
        version == other.version && prepareQuorum == other.prepareQuorum && acceptQuorum == other.acceptQuorum
            && Set(prepareAcceptors) == Set(other.prepareAcceptors)
            && Set(acceptAcceptors) == Set(other.acceptAcceptors)
    }

    /// Every acceptor of either phase, each once, prepare acceptors first.
    public var allAcceptors: [Endpoint] {
        var seen = Set(prepareAcceptors)
        return prepareAcceptors + acceptAcceptors.filter { seen.insert($0).inserted }
    }

    /// Checks the version (at most ``maximumVersion``), the sets
    /// (1 ... 255 distinct acceptors each) and that the quorums are within
    /// the sets and intersect.
    ///
    /// - Throws: `ConfigurationError` naming the first bad field.
    public func validate() throws(ConfigurationError) {
        guard version <= Self.maximumVersion else {
            throw ConfigurationError(field: "version", value: "\(version)", allowedRange: "0 ... \(Self.maximumVersion)")
        }
        for (field, set) in [("prepareAcceptors", prepareAcceptors), ("acceptAcceptors", acceptAcceptors)] {
            guard (1...255).contains(set.count), Set(set).count == set.count else {
                throw ConfigurationError(
                    field: field, value: "\(set.count) acceptors", allowedRange: "1 ... 255 distinct endpoints")
            }
        }
        guard (1...prepareAcceptors.count).contains(prepareQuorum) else {
            throw ConfigurationError(
                field: "prepareQuorum", value: "\(prepareQuorum)", allowedRange: "1 ... \(prepareAcceptors.count)")
        }
        guard (1...acceptAcceptors.count).contains(acceptQuorum) else {
            throw ConfigurationError(
                field: "acceptQuorum", value: "\(acceptQuorum)", allowedRange: "1 ... \(acceptAcceptors.count)")
        }
        let union = allAcceptors.count
        guard prepareQuorum + acceptQuorum > union else {
            throw ConfigurationError(
                field: "acceptQuorum", value: "\(acceptQuorum)",
                allowedRange: "more than \(union - prepareQuorum) (prepare and accept quorums must intersect)")
        }
    }

    /// The sets and quorums, for logs.
    public var description: String {
        "v\(version) prepare \(prepareQuorum)/\(prepareAcceptors.count) accept \(acceptQuorum)/\(acceptAcceptors.count)"
    }
}
