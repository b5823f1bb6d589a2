import EventCore

/// The acceptor role of CASPaxos as a sans-IO state machine: it keeps, per
/// key, the promised ballot and the accepted (ballot, value), answers
/// prepares and accepts, and carries out the acceptor's steps of garbage
/// collection (minimum proposer ages, tombstone removal) and membership
/// change (key listing, the fence of older configurations).
///
/// Every change of state comes out as a ``CASPaxosEffect/persist(_:)``
/// before the reply that depends on it; the driver makes it durable in an
/// ``AcceptorStore`` first. The acceptor keeps its registers in memory and
/// starts from the snapshot the store recovered.
///
/// Rules (the paper's, plus what the network needs):
/// - a prepare is promised if its ballot is at least the promise and above
///   the accepted ballot, or equal to both (a repeated prepare after its
///   own accept); an accept is accepted if its ballot is at least
///   the promise, or is the ballot the register holds accepted (a copy: a
///   proposer's resend or the network's duplicate, answered again though
///   a higher ballot was promised since); otherwise a
///   ``CASPaxosMessage/conflict(requestID:highest:neverAccepted:)`` names
///   the highest ballot seen, so the proposer can fast-forward, and says
///   whether this acceptor knows it never accepted the refused ballot
///   (``RegisterState``'s hint);
/// - an accept may carry the next ballot (one-round-trip optimization),
///   which is promised in the same step;
/// - a proposer younger than the minimum age garbage collection set for it
///   is refused with ``CASPaxosMessage/staleAge(requestID:minimumAge:)``;
/// - a proposer whose configuration is older than the fence the last
///   membership change set (``AcceptorSnapshot/minimumVersion``), or of
///   the fence's version with another digest, is refused with ``CASPaxosMessage/staleConfiguration(requestID:minimumVersion:)``;
/// - an absent key refuses every ballot up to ``AcceptorSnapshot/removalFloor``
///   (as if it had promised the least ballot above it), so no ballot of a
///   removed tombstone's time can write it again, and a register folded
///   into the floor (below) keeps its promise; a collection's messages
///   are the exceptions below;
/// - a collection's re-write of a tombstone
///   (``CASPaxosMessage/rewriteTombstone(requestID:key:ballot:age:version:)``)
///   for an absent key is taken at any ballot, the removal floor raised
///   to it if below, with no register stored: an absent key already reads
///   as nothing, and the floor refuses what the tombstone's promise would
///   (so a full acceptor takes it too); a full acceptor promises a
///   collection's prepare
///   (``CASPaxosMessage/collectionPrepare(requestID:key:ballot:age:version:)``)
///   of a key it does not hold the same way, unless folding a register
///   (below) makes room to store the promise, as a prepare; a full
///   acceptor takes the re-write of a key whose register holds only a
///   promise (that one, say) by removing it, the floor raised to the
///   ballot, so the room the fold made is free again;
/// - a zero ballot, or a next ballot not above the ballot, is dropped and
///   counted;
/// - the maps the network feeds are bounded: registers by
///   ``CASPaxosConfiguration/maximumRegisters``, minimum ages by
///   ``CASPaxosConfiguration/maximumTrackedProposers`` (over either, the
///   message is refused or dropped, and counted); at the register limit,
///   a new key first takes the room of the oldest register holding only a
///   promise (a prepare whose accept never came), whose promise the
///   removal floor then keeps.
public struct Acceptor {
    /// The validated configuration.
    public let configuration: CASPaxosConfiguration
    /// What the acceptor has done so far.
    public internal(set) var counters = AcceptorCounters()

    private var state: AcceptorSnapshot
    /// The keys in byte order for key listings: built at the first listing,
    /// then kept up to date by every write.
    private var keyIndex: SortedKeyIndex?
    /// The registers holding a promise and nothing accepted, oldest first.
    private var promiseOnly: PromiseOnlyRegisters

    /// Creates an acceptor from the state its store recovered.
    ///
    /// - Throws: `ConfigurationError` if `configuration` is invalid.
    public init(
        recovering snapshot: AcceptorSnapshot = AcceptorSnapshot(), configuration: CASPaxosConfiguration
    ) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        state = snapshot
        promiseOnly = PromiseOnlyRegisters(snapshot.table.lazy.filter { $0.value.accepted == .zero }.map(\.key.bytes))
    }

    /// The register of `key`, if the acceptor holds one.
    public func register(_ key: [UInt8]) -> RegisterState? { state.register(key) }
    /// How many registers the acceptor holds.
    public var registerCount: Int { state.registerCount }
    /// The whole state (what the store must hold once synced).
    public var snapshot: AcceptorSnapshot { state }

    /// Handles a message from `sender`, appending the writes to persist and
    /// the replies to send.
    public mutating func receive(_ message: CASPaxosMessage, from sender: Endpoint, into effects: inout [CASPaxosEffect]) {
        switch message {
        case .prepare(let id, let key, let ballot, let age, let version):
            guard admits(id, ballot, age, version, from: sender, into: &effects) else { return }
            prepare(id, key, ballot, from: sender, into: &effects)
        case .readPrepare(let id, let key, let ballot, let age, let version):
            guard admits(id, ballot, age, version, from: sender, into: &effects) else { return }
            guard state.register(key) == nil else { return prepare(id, key, ballot, from: sender, into: &effects) }
            // Nothing to store: the read ends at this promise, or prepares
            // again with promises that are stored (see Proposer).
            let register = absentRegister
            guard ballot >= register.promised else { return refuse(id, ballot, register, to: sender, into: &effects) }
            counters.unrecordedPromises += 1
            effects.append(.send(.unrecordedPromise(requestID: id, removalFloor: removalFloorNamed), to: sender))
        case .collectionPrepare(let id, let key, let ballot, let age, let version):
            guard admits(id, ballot, age, version, from: sender, into: &effects) else { return }
            // A full acceptor that can make room for the key answers as one
            // with room would: the promise stored, so that the collection's
            // write-back of a value at this ballot is taken too.
            guard state.register(key) == nil, isFull, !foldLeavesRoom(promising: ballot) else {
                return prepare(id, key, ballot, from: sender, into: &effects)
            }
            // Full, without the key, and no fold would store this promise:
            // promised through the floor, raised to the ballot if below it,
            // at any ballot (a repeated copy, or another collection's floor
            // above it): the key is absent, so nothing accepted for it is
            // above the floor, and the floor refuses every lower ballot (see
            // CASPaxosMessage.collectionPrepare).
            guard keepsFloorSane(ballot) else { return }
            raiseFloor(to: ballot, counting: \.promisesByFloor, into: &effects)
            counters.promises += 1
            effects.append(
                .send(.promise(requestID: id, accepted: .zero, value: nil, removalFloor: removalFloorNamed), to: sender))
        case .accept(let id, let key, let ballot, let age, let value, let next, let version):
            receiveAccept(id, key, ballot, age, value, next, version, parent: nil, from: sender, into: &effects)
        case .acceptWithParent(let id, let key, let ballot, let age, let value, let version, let parent, let next):
            receiveAccept(id, key, ballot, age, value, next, version, parent: parent, from: sender, into: &effects)
        case .rewriteTombstone(let id, let key, let ballot, let age, let version):
            guard admits(id, ballot, age, version, from: sender, into: &effects) else { return }
            if let register = state.register(key) {
                // A full acceptor whose register holds only a promise (the
                // collection's own, stored by a fold) takes the re-write as
                // it takes one of a key it lacks, below: a tombstone stored
                // would keep the room the fold made until the removal step.
                // (Not at an absurd ballot, which the floor must not take:
                // stored, as a tombstone is anywhere else.)
                guard isFull, register.accepted == .zero, ballot >= register.promised,
                    ballot.counter <= Ballot.ownCounterLimit
                else {
                    return accept(id, key, ballot, nil, parent: nil, promising: ballot, from: sender, into: &effects)
                }
                counters.tombstonesTakenAsRemoved += 1
                persist(.remove(key: key, floor: ballot), into: &effects)
            } else {
                // Accepted and removed at once, at any ballot: the floor,
                // raised to the ballot if below it, refuses what the
                // tombstone's promise would have. A floor already there (the
                // collection's prepare promised through it, a repeated copy,
                // another collection) is the state taking it leaves: the key
                // absent, the floor at or above the ballot (see
                // CASPaxosMessage.rewriteTombstone).
                guard keepsFloorSane(ballot) else { return }
                raiseFloor(to: ballot, counting: \.tombstonesTakenAsRemoved, into: &effects)
            }
            counters.acceptances += 1
            effects.append(.send(.accepted(requestID: id), to: sender))
        case .setMinimumAges(let id, let ages):
            // As in admits(): only an in-process message gets here with an
            // age the decoder refuses, and the log must replay what it stores.
            guard ages.allSatisfy({ $0.age <= ProposerAge.maximumAge }) else {
                counters.invalidBallots += 1
                return
            }
            let known = state.minimumAges
            let listed = Set(ages.map(\.proposer))
            let newProposers = listed.filter { known[$0] == nil }
            if known.count + newProposers.count > configuration.trackedProposerLimit {
                // Make room by forgetting proposers this collection does not
                // list: the removal floor, not their age, refuses what a
                // stale cache of theirs could still send for a removed key.
                guard listed.count <= configuration.trackedProposerLimit else {
                    counters.minimumAgesRefused += 1
                    return
                }
                let unlisted = known.keys.filter { !listed.contains($0) }
                for proposer in unlisted.sorted(by: { $0.rawValue < $1.rawValue })
                where state.minimumAges.count + newProposers.count > configuration.trackedProposerLimit {
                    persist(.forgetMinimumAge(proposer: proposer), into: &effects)
                    counters.minimumAgesForgotten += 1
                }
            }
            for pair in ages where pair.age > state.minimumAges[pair.proposer] ?? 0 {
                persist(.minimumAge(proposer: pair.proposer, age: pair.age), into: &effects)
            }
            effects.append(.send(.acknowledged(requestID: id), to: sender))
        case .removeTombstone(let id, let key, let ballot):
            if let register = state.register(key), register.isTombstone, register.accepted == ballot,
                keepsFloorSane(register.promised)
            {
                counters.registersRemoved += 1
                persist(.remove(key: key, floor: register.promised), into: &effects)
            }
            effects.append(.send(.acknowledged(requestID: id), to: sender))
        case .listKeys(let id, let after, let floor, let minimumVersion):
            // An acceptor being added takes its new peers' removal floor
            // first, and every acceptor the fence (both durable before the
            // answer leaves): a write that a proposer left behind completes
            // from now on needs an acceptance this acceptor refuses, and
            // one it completed before is in this listing.
            if let floor, floor > state.removalFloor {
                guard keepsFloorSane(floor) else { return }
                persist(.removalFloor(floor), into: &effects)
            }
            raiseMinimumVersion(to: minimumVersion, into: &effects)
            effects.append(.send(listing(id, after: after), to: sender))
        case .setMinimumVersion(let id, let version):
            raiseMinimumVersion(to: version, into: &effects)
            effects.append(.send(.acknowledged(requestID: id), to: sender))
        case .promise, .promiseWithParent, .unrecordedPromise, .accepted, .conflict, .staleAge, .staleConfiguration, .registersFull,
            .invalidate, .invalidated, .acknowledged, .reconfigure, .configurationRefused, .keyList:
            counters.unexpectedMessages += 1
        }
    }

    /// An accept, with the parent of its value if it names one: checked,
    /// then taken or refused.
    private mutating func receiveAccept(
        _ id: UInt64, _ key: [UInt8], _ ballot: Ballot, _ age: UInt64, _ value: [UInt8]?, _ next: Ballot?,
        _ version: ConfigurationVersion, parent: Ballot?, from sender: Endpoint, into effects: inout [CASPaxosEffect]
    ) {
        guard admits(id, ballot, age, version, from: sender, into: &effects) else { return }
        if let next, next <= ballot || next.counter > Ballot.maximumCounter {
            counters.invalidBallots += 1
            return
        }
        // A value is computed from an older one: a parent at or above the
        // ballot is no proposer's.
        if let parent, parent >= ballot {
            counters.invalidBallots += 1
            return
        }
        accept(id, key, ballot, value, parent: parent, promising: next ?? ballot, from: sender, into: &effects)
    }

    /// Whether the removal floor may rise to `ballot`: not above
    /// ``Ballot/ownCounterLimit`` (counted in
    /// ``AcceptorCounters/absurdFloorsRefused``), the highest ballot a
    /// proposer draws from its own counter, even one that followed a
    /// forge to ``Ballot/followedCounterLimit``; a floor there still
    /// leaves every proposer the ballots it draws above it for a key. Every absent key is
    /// promised at the floor, so an absurd ballot there (forged, or a
    /// collection's of a key an absurd ballot reached) would refuse every
    /// new key the ballots of every proposer, where kept in one register
    /// it touches that key alone: the register is kept, or the message
    /// that would raise the floor dropped (as if lost: what it asks is
    /// never answered, which the protocol survives).
    private mutating func keepsFloorSane(_ ballot: Ballot) -> Bool {
        guard ballot.counter > Ballot.ownCounterLimit else { return true }
        counters.absurdFloorsRefused += 1
        return false
    }

    /// Raises the removal floor to `ballot` if it is below, counting it in
    /// `counter`.
    private mutating func raiseFloor(
        to ballot: Ballot, counting counter: WritableKeyPath<AcceptorCounters, Int>, into effects: inout [CASPaxosEffect]
    ) {
        guard ballot > state.removalFloor else { return }
        counters[keyPath: counter] += 1
        persist(.removalFloor(ballot), into: &effects)
    }

    /// Accepts `value` (computed from `parent`'s, if known) at `ballot`
    /// for `key` and promises `promised` (the ballot, or the next one an
    /// accept carries), or refuses it.
    private mutating func accept(
        _ id: UInt64, _ key: [UInt8], _ ballot: Ballot, _ value: [UInt8]?, parent: Ballot?, promising promised: Ballot,
        from sender: Endpoint, into effects: inout [CASPaxosEffect]
    ) {
        guard
            let register = update(key, into: &effects, {
                ballot >= $0.promised ? $0.accepting(value, at: ballot, parent: parent, promising: promised) : nil
            })
        else { return effects.append(.send(.registersFull(requestID: id), to: sender)) }
        if ballot < register.promised {
            // A copy of an accept this acceptor holds (a proposer's resend,
            // its first answer lost, or a duplicate) is taken again,
            // whatever it promised since (the next ballot the accept
            // carried, say): it did accept that ballot, and a ballot is
            // sent with one value only.
            guard ballot == register.accepted else { return refuse(id, ballot, register, to: sender, into: &effects) }
            counters.repeatedAcceptances += 1
        } else {
            counters.acceptances += 1
        }
        effects.append(.send(.accepted(requestID: id), to: sender))
    }

    /// Promises `ballot` for `key` (stored), or refuses it.
    private mutating func prepare(
        _ id: UInt64, _ key: [UInt8], _ ballot: Ballot, from sender: Endpoint, into effects: inout [CASPaxosEffect]
    ) {
        guard
            let register = update(key, into: &effects, {
                ballot > $0.promised ? $0.promising(ballot) : nil
            })
        else { return effects.append(.send(.registersFull(requestID: id), to: sender)) }
        guard ballot >= register.promised else { return refuse(id, ballot, register, to: sender, into: &effects) }
        counters.promises += 1
        // A register that accepted nothing names the removal floor:
        // everything this acceptor accepted for a key it removed was below
        // it (see CASPaxosMessage.promise).
        let floor = register.accepted == .zero ? removalFloorNamed : nil
        let promise: CASPaxosMessage =
            if let parent = register.parent {
                .promiseWithParent(
                    requestID: id, accepted: register.accepted, value: register.value, removalFloor: floor, parent: parent)
            } else {
                .promise(requestID: id, accepted: register.accepted, value: register.value, removalFloor: floor)
            }
        effects.append(.send(promise, to: sender))
    }

    /// Whether the acceptor holds ``CASPaxosConfiguration/maximumRegisters``
    /// registers: a new key is stored only in the room of a register
    /// folded into the floor (``foldPromiseOnlyRegister(into:)``).
    private var isFull: Bool { state.table.count >= configuration.maximumRegisters }

    /// The removal floor, as a promise of a key that accepted nothing names
    /// it (nil if no key was ever removed).
    private var removalFloorNamed: Ballot? { state.removalFloor != .zero ? state.removalFloor : nil }

    /// The register an absent key stands for: promised the least ballot
    /// above the removal floor (see ``update(_:into:_:)``).
    private var absentRegister: RegisterState { Self.absentRegister(under: state.removalFloor) }

    /// The register an absent key stands for under removal floor `floor`.
    private static func absentRegister(under floor: Ballot) -> RegisterState {
        RegisterState(promised: floor == .zero ? .zero : floor.successor)
    }

    /// Checks a proposer message's ballot, age and configuration version;
    /// refuses or drops it if they do not pass.
    private mutating func admits(
        _ id: UInt64, _ ballot: Ballot, _ age: UInt64, _ version: ConfigurationVersion, from sender: Endpoint,
        into effects: inout [CASPaxosEffect]
    ) -> Bool {
        // The decoder refuses counters and ages above their maximums; a
        // message handed over in process (a node's own proposer) is not
        // decoded, and what this acceptor stores must decode again when
        // its log is replayed.
        guard ballot.counter > 0, ballot.counter <= Ballot.maximumCounter, age <= ProposerAge.maximumAge else {
            counters.invalidBallots += 1
            return false
        }
        guard version.passes(state.minimumVersion) else {
            counters.staleConfigurationRefusals += 1
            effects.append(
                .send(.staleConfiguration(requestID: id, minimumVersion: state.minimumVersion), to: sender))
            return false
        }
        if let minimum = state.minimumAges[ballot.proposer], age < minimum {
            counters.staleAgeRefusals += 1
            effects.append(.send(.staleAge(requestID: id, minimumAge: minimum), to: sender))
            return false
        }
        return true
    }

    /// Changes the register of `key` to what `change` returns for it (nil:
    /// no change), recording and persisting the change if it is one, and
    /// returns the register as it was. An absent key is a new register
    /// promised just above the removal floor. At the register limit a new
    /// register takes the room of one folded into the floor; a promise is
    /// then decided again under the raised floor, and the register returned
    /// is the absent one under it. Nil (counted) if the change would store
    /// a new register and none can be folded (a refusal needs no
    /// register). Looks the key up once.
    private mutating func update(
        _ key: [UInt8], into effects: inout [CASPaxosEffect], _ change: (RegisterState) -> RegisterState?
    ) -> RegisterState? {
        if let index = state.table.index(forKey: RegisterKey(key)) {
            let register = state.table.values[index]
            if let changed = change(register), changed != register {
                state.table.values[index] = changed
                let key = state.table.keys[index].bytes
                // Promised again (the youngest now), or a value accepted:
                // a register holding a value never becomes promise-only.
                if register.accepted == .zero { trackPromiseOnly(key, changed) }
                effects.append(.persist(.register(key: key, state: changed)))
            }
            return register
        }
        // Ballots up to the floor are refused: as if the least ballot
        // above it had been promised (a delayed accept of a collection's
        // re-write at the floor, sent as a plain accept with
        // isTombstoneRewriteEnabled off, would otherwise make the key
        // again, a tombstone nothing collects).
        var register = absentRegister
        guard var changed = change(register), changed != register else { return register }
        if isFull {
            guard foldPromiseOnlyRegister(into: &effects) else {
                counters.registersRefused += 1
                return nil
            }
            // A promise alone is decided again under the floor the fold
            // may have raised: one below it could not be kept (this key's
            // own fold would take it). An acceptance stands: a register
            // holding a value is never folded.
            if changed.accepted == .zero {
                register = absentRegister
                guard let raised = change(register), raised != register else { return register }
                changed = raised
            }
        }
        persist(.register(key: key, state: changed), into: &effects)
        return register
    }

    /// Makes room for a new key by removing the oldest register that holds
    /// a promise and nothing accepted, its promise kept by the removal
    /// floor (raised to the ballot just below it, if lower); returns
    /// whether there was one.
    ///
    /// That key, absent, reads as nothing accepted, as it did, and refuses
    /// the ballots below the least one above the floor: at least what it
    /// refused (more, if the floor was above its promise already). The
    /// other absent keys refuse a little more: safe, a refused proposer
    /// fast-forwards (its counter, for every key). A promise the floor
    /// names is one more reason for a retried proposal to end
    /// indeterminate (see ``Proposer``), a cost paid only when full. The
    /// oldest is taken: the likeliest abandoned, the writes in flight
    /// being the youngest. A full acceptor with none abandoned left takes
    /// the room of writes in flight, which then fail indeterminate (their
    /// accept refused for room) where a new key's prepare was refused
    /// before, definitely.
    private mutating func foldPromiseOnlyRegister(into effects: inout [CASPaxosEffect]) -> Bool {
        guard let (key, register) = oldestFoldable() else { return false }
        promiseOnly.remove(key.bytes)
        counters.promiseOnlyRegistersFolded += 1
        persist(.remove(key: key.bytes, floor: register.promised.predecessor), into: &effects)
        return true
    }

    /// The oldest promise-only register and its state. One promised above
    /// ``Ballot/ownCounterLimit`` is taken off the line and kept
    /// (``keepsFloorSane(_:)``): folding it would raise the floor there.
    private mutating func oldestFoldable() -> (key: RegisterKey, register: RegisterState)? {
        while let oldest = promiseOnly.oldest() {
            // Folding a register that holds a value would lose it: trap
            // rather than corrupt.
            guard let register = state.table[oldest], register.accepted == .zero else {
                preconditionFailure("the promise-only line lists a key whose register is gone or holds a value")
            }
            if keepsFloorSane(register.promised) { return (oldest, register) }
            promiseOnly.remove(oldest.bytes)
        }
        return nil
    }

    /// Whether folding the oldest promise-only register would leave room
    /// for a new key promised `ballot`: there is one, and `ballot` is above
    /// the least ballot above the floor that fold would raise (what an
    /// absent key is taken to have promised), so a prepare stores it (the
    /// decision ``update(_:into:_:)`` makes after the fold).
    private mutating func foldLeavesRoom(promising ballot: Ballot) -> Bool {
        guard let (_, register) = oldestFoldable() else { return false }
        let floor = max(state.removalFloor, register.promised.predecessor)
        return ballot > Self.absentRegister(under: floor).promised
    }

    private mutating func refuse(
        _ id: UInt64, _ ballot: Ballot, _ register: RegisterState, to sender: Endpoint,
        into effects: inout [CASPaxosEffect]
    ) {
        counters.conflicts += 1
        let highest = max(register.promised, register.accepted)
        let message = CASPaxosMessage.conflict(
            requestID: id, highest: highest, neverAccepted: register.neverAccepted(ballot))
        effects.append(.send(message, to: sender))
    }

    /// Raises the fence (``AcceptorSnapshot/minimumVersion``) to
    /// `version`; never lowers it (see ``ConfigurationVersion/raised(to:)``).
    private mutating func raiseMinimumVersion(to version: ConfigurationVersion, into effects: inout [CASPaxosEffect]) {
        if let raised = state.minimumVersion.raised(to: version) { persist(.minimumVersion(raised), into: &effects) }
    }

    private mutating func persist(_ write: AcceptorWrite, into effects: inout [CASPaxosEffect]) {
        // The indexes first, while the state says whether the key was there
        // (the key index only once a listing built it).
        switch write {
        case .register(let key, let register):
            if keyIndex != nil && state.register(key) == nil { keyIndex?.insert(key) }
            trackPromiseOnly(key, register)
        case .remove(let key, _):
            if keyIndex != nil && state.register(key) != nil { keyIndex?.remove(key) }
            trackPromiseOnly(key, nil)
        case .removalFloor, .minimumAge, .forgetMinimumAge, .proposerConfiguration, .minimumVersion: break
        }
        state.apply(write)
        effects.append(.persist(write))
    }

    /// Lists `key` in ``promiseOnly`` (last) if `register` holds a promise
    /// and nothing accepted, else takes it off (nil: the register was
    /// removed). Every change of a register goes through here or through
    /// ``update(_:into:_:)``'s check of the register it replaces.
    private mutating func trackPromiseOnly(_ key: [UInt8], _ register: RegisterState?) {
        if let register, register.accepted == .zero { promiseOnly.append(key) } else { promiseOnly.remove(key) }
    }

    /// Up to ``CASPaxosConfiguration/maximumKeysPerListing`` keys after
    /// `after`, in byte order, with the removal floor, from the
    /// ``SortedKeyIndex`` (one sort of every key at the first listing, then
    /// O(log n + page) per page). A key present from a listing's first page
    /// to its last is in exactly one page; a key added or removed meanwhile
    /// may or may not be.
    private mutating func listing(_ id: UInt64, after: [UInt8]?) -> CASPaxosMessage {
        let index = keyIndex ?? SortedKeyIndex(state.table.keys.lazy.map(\.bytes))
        keyIndex = index
        // The keys fill at most a message: besides them a listing holds a
        // tag, a request ID, a count, a flag and a ballot (under 64 bytes).
        let page = index.page(
            after: after, limit: configuration.maximumKeysPerListing, bytes: configuration.maximumMessageSize - 64)
        return .keyList(requestID: id, keys: page.keys, isComplete: page.isComplete, removalFloor: state.removalFloor)
    }
}
