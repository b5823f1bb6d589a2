import EventCore
import Foundation
import SWIM

/// What `chorus node` keeps in its data directory besides the Raft log
/// (`raft/`, a `FileRaftStorage`):
/// - `identity`: the machine's ID (its SWIM member's and its Raft
///   replica's), chosen at random at its first start, and the endpoint it
///   is bound to, where the group's members reach it (a membership entry
///   names it);
/// - `first-membership`: the Raft group's first membership as this
///   machine started the group, bootstrapping it or joining it, which every
///   restart passes to the replica again (Raft's log records the changes
///   made since, not the members a group started with).
///
/// Each is one line of text, written once and atomically (a temporary
/// file, `fdatasync`, rename, `fsync` of the directory), so a crash or a
/// power loss leaves it whole or absent. The directory is locked while
/// this object lives (`flock`), so two processes never run one machine.
final class NodeDataDirectory {
    /// Who this machine is, and where the others reach it.
    struct Identity: Equatable {
        var id: NodeID
        var endpoint: Endpoint
    }

    /// How the group started on this machine, and with whom.
    struct FirstMembership: Equatable {
        /// The Raft group's ID: the lowest ID of the machines that
        /// bootstrapped it (random, so two clusters' groups differ).
        var group: UInt64
        /// The machine joined a running group (added by its leader);
        /// otherwise it bootstrapped the group with the others.
        var joining: Bool
        /// The members it started with: with `joining`, the group's
        /// members then (this machine not among them); otherwise every
        /// first member, this machine included.
        var members: [Identity]

        /// The SWIM members `ChorusNode.startGroup` takes.
        var swimMembers: [Member] {
            members.map { Member(id: $0.id, endpoint: $0.endpoint, incarnation: 0, status: .alive) }
        }
    }

    /// The directory.
    let path: String
    /// The directory's lock, until ``close()``.
    private var lock: DirectoryLock?

    /// The Raft log's directory.
    var raftPath: String { path + "/raft" }

    /// Opens the data directory `path`, creating it (durably) if needed,
    /// and locks it.
    ///
    /// - Throws: ``NodeDataError`` (the directory cannot be made, or
    ///   another process holds it).
    init(path: String) throws(NodeDataError) {
        self.path = path
        do throws(DurableFileError) {
            _ = try DurableFile.makeDirectoryDurably(path)
            lock = try DirectoryLock(path)
        } catch {
            throw NodeDataError(
                path: path, problem: error.isLockHeld ? "another process runs this machine" : "\(error)")
        }
    }

    /// Releases the directory's lock: another session may open it.
    func close() {
        lock = nil
    }

    /// The machine's identity, or nil before its first start.
    ///
    /// - Throws: ``NodeDataError`` for a file that cannot be read or does
    ///   not hold an identity.
    func identity() throws(NodeDataError) -> Identity? {
        try read("identity").map { line throws(NodeDataError) in
            guard let identity = Self.identity(parsing: Substring(line)) else {
                throw NodeDataError(path: path + "/identity", problem: "'\(line)' is not ID@HOST:PORT")
            }
            return identity
        }
    }

    /// Stores the machine's identity (at its first start).
    func save(_ identity: Identity) throws(NodeDataError) {
        try write(Self.line(identity), to: "identity")
    }

    /// The group's first membership as this machine started it, or nil if
    /// it never started the group.
    ///
    /// - Throws: ``NodeDataError`` for a file that cannot be read or does
    ///   not hold a first membership.
    func firstMembership() throws(NodeDataError) -> FirstMembership? {
        try read("first-membership").map { line throws(NodeDataError) in
            let words = line.split(separator: " ")
            let members = words.dropFirst(2).compactMap(Self.identity(parsing:))
            guard words.count >= 3, words[0] == "bootstrap" || words[0] == "joining",
                let group = UInt64(words[1], radix: 16), group != 0, members.count == words.count - 2
            else {
                throw NodeDataError(path: path + "/first-membership", problem: "'\(line)' is not a first membership")
            }
            return FirstMembership(group: group, joining: words[0] == "joining", members: members)
        }
    }

    /// Stores the group's first membership (before the replica's first
    /// start, so that every restart finds it): `bootstrap` or `joining`,
    /// the group's ID in hexadecimal, then `ID@HOST:PORT` for each member.
    func save(_ membership: FirstMembership) throws(NodeDataError) {
        let words =
            [membership.joining ? "joining" : "bootstrap", String(membership.group, radix: 16)]
            + membership.members.map(Self.line)
        try write(words.joined(separator: " "), to: "first-membership")
    }

    /// `ID@HOST:PORT`, the ID in hexadecimal.
    private static func line(_ identity: Identity) -> String {
        "\(String(identity.id.rawValue, radix: 16))@\(identity.endpoint)"
    }

    private static func identity(parsing word: Substring) -> Identity? {
        guard let at = word.firstIndex(of: "@"), let id = NodeID(String(word[..<at])), id.rawValue != 0,
            let endpoint = try? Endpoint(parsing: String(word[word.index(after: at)...]))
        else { return nil }
        return Identity(id: id, endpoint: endpoint)
    }

    /// The line stored in `name`, or nil if there is no such file.
    private func read(_ name: String) throws(NodeDataError) -> String? {
        let bytes: [UInt8]
        do throws(DurableFileError) {
            bytes = try DurableFile(path: path + "/" + name, creating: false).readAll()
        } catch {
            if error.call == "open" && error.errno == ENOENT { return nil }
            throw NodeDataError(path: path + "/" + name, problem: "\(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw NodeDataError(path: path + "/" + name, problem: "not UTF-8 text")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Replaces `name` with `line` atomically and durably.
    private func write(_ line: String, to name: String) throws(NodeDataError) {
        let temporary = path + "/" + name + ".new"
        do throws(DurableFileError) {
            let file = try DurableFile(path: temporary, truncating: true)
            try file.append(Array((line + "\n").utf8))
            try file.synchronizeData()
            try file.rename(to: path + "/" + name)
            try DurableFile.synchronizeDirectory(path)
        } catch {
            throw NodeDataError(path: path + "/" + name, problem: "\(error)")
        }
    }
}
