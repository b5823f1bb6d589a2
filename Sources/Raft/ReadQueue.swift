/// A ``RaftNode``'s linearizable reads: those its replica has not yet
/// confirmed (by ID), then those confirmed here or by the leader a
/// follower forwarded them to, waiting for the state machine to apply
/// their index. Each `take…` removes the reads it returns, so that a
/// completion called afterwards finds the queue as it is.
struct ReadQueue {
    typealias Completion = (Result<Void, RaftError>) -> Void

    private var lastID: UInt64 = 0
    private var unconfirmed: [UInt64: Completion] = [:]
    /// In the order confirmed.
    private var confirmed: [(index: UInt64, completion: Completion)] = []

    /// Reads not yet served.
    var count: Int { unconfirmed.count + confirmed.count }

    /// A new read's ID.
    mutating func nextID() -> UInt64 {
        lastID += 1
        return lastID
    }

    mutating func wait(_ id: UInt64, _ completion: @escaping Completion) {
        unconfirmed[id] = completion
    }

    /// Moves the reads the replica confirmed to wait for their index.
    mutating func confirm(_ states: [RaftReadState]) {
        for state in states {
            guard let completion = unconfirmed.removeValue(forKey: state.id) else { continue }
            confirmed.append((state.index, completion))
        }
    }

    /// A read the leader confirmed for this follower, to serve once
    /// `index` is applied here.
    mutating func confirmed(at index: UInt64, _ completion: @escaping Completion) {
        confirmed.append((index, completion))
    }

    /// The confirmed reads whose index is applied, in the order confirmed.
    mutating func takeServable(applied: UInt64) -> [Completion] {
        takeConfirmed { $0 <= applied }
    }

    /// The confirmed reads whose index is past `index`, in the order
    /// confirmed.
    mutating func takeConfirmed(above index: UInt64) -> [Completion] {
        takeConfirmed { $0 > index }
    }

    /// The confirmed reads whose index `isTaken` picks, in the order
    /// confirmed (nothing copied when none is).
    private mutating func takeConfirmed(where isTaken: (UInt64) -> Bool) -> [Completion] {
        guard confirmed.contains(where: { isTaken($0.index) }) else { return [] }
        let taken = confirmed.filter { isTaken($0.index) }.map(\.completion)
        confirmed.removeAll { isTaken($0.index) }
        return taken
    }

    /// The reads not yet confirmed, in the order they were made.
    mutating func takeUnconfirmed() -> [Completion] {
        let taken = unconfirmed.sorted { $0.key < $1.key }.map(\.value)
        unconfirmed.removeAll()
        return taken
    }

    /// Every read not yet served: unconfirmed, then confirmed.
    mutating func takeAll() -> [Completion] {
        let taken = takeUnconfirmed() + confirmed.map(\.completion)
        confirmed.removeAll()
        return taken
    }
}
