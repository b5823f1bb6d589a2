#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import WireCodec

// Protocol-shaped messages written with WireCodec the way the protocol
// modules write theirs: fields in order with WireWriter/WireReader
// primitives. Their swift-protobuf twins are in Protobuf/chorus_bench.proto.

/// One SWIM membership update piggybacked on a probe.
struct MemberUpdate: WireCodable, Equatable {
    var node: UInt64
    var incarnation: UInt64
    var status: UInt8

    func encode(to writer: inout WireWriter) {
        writer.writeUInt64(node)
        writer.writeVarint(incarnation)
        writer.writeUInt8(status)
    }

    init(node: UInt64, incarnation: UInt64, status: UInt8) {
        self.node = node
        self.incarnation = incarnation
        self.status = status
    }

    init(from reader: inout WireReader) throws(WireError) {
        node = try reader.readUInt64()
        incarnation = try reader.readVarint()
        status = try reader.readUInt8()
    }
}

/// A SWIM ping: sequence number (varint), source and target node IDs (fixed
/// 8 bytes each), the sender's incarnation (varint) and piggybacked updates
/// (a varint count, 0 in the benchmark). 20 to 30 bytes on the wire.
struct SWIMPing: WireCodable, Equatable {
    var sequence: UInt64
    var source: UInt64
    var target: UInt64
    var incarnation: UInt64
    var piggyback: [MemberUpdate]

    init(sequence: UInt64, source: UInt64, target: UInt64, incarnation: UInt64, piggyback: [MemberUpdate]) {
        self.sequence = sequence
        self.source = source
        self.target = target
        self.incarnation = incarnation
        self.piggyback = piggyback
    }

    func encode(to writer: inout WireWriter) {
        writer.writeVarint(sequence)
        writer.writeUInt64(source)
        writer.writeUInt64(target)
        writer.writeVarint(incarnation)
        writer.write(piggyback)
    }

    init(from reader: inout WireReader) throws(WireError) {
        sequence = try reader.readVarint()
        source = try reader.readUInt64()
        target = try reader.readUInt64()
        incarnation = try reader.readVarint()
        piggyback = try reader.read([MemberUpdate].self)
    }
}

/// One Raft log entry: term and index (varints) and its command bytes
/// (length-prefixed, copied out on decode so the entry owns them).
struct LogEntry: WireCodable, Equatable {
    var term: UInt64
    var index: UInt64
    var data: [UInt8]

    init(term: UInt64, index: UInt64, data: [UInt8]) {
        self.term = term
        self.index = index
        self.data = data
    }

    func encode(to writer: inout WireWriter) {
        writer.writeVarint(term)
        writer.writeVarint(index)
        writer.writeBytes(data)
    }

    init(from reader: inout WireReader) throws(WireError) {
        term = try reader.readVarint()
        index = try reader.readVarint()
        data = try reader.readByteArray()
    }
}

/// A Raft AppendEntries request: term, leader ID (fixed 8 bytes), previous
/// log index and term, leader commit (varints), then the entries.
struct AppendEntries: WireCodable, Equatable {
    var term: UInt64
    var leaderID: UInt64
    var prevLogIndex: UInt64
    var prevLogTerm: UInt64
    var leaderCommit: UInt64
    var entries: [LogEntry]

    init(term: UInt64, leaderID: UInt64, prevLogIndex: UInt64, prevLogTerm: UInt64, leaderCommit: UInt64, entries: [LogEntry]) {
        self.term = term
        self.leaderID = leaderID
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.leaderCommit = leaderCommit
        self.entries = entries
    }

    func encode(to writer: inout WireWriter) {
        writer.writeVarint(term)
        writer.writeUInt64(leaderID)
        writer.writeVarint(prevLogIndex)
        writer.writeVarint(prevLogTerm)
        writer.writeVarint(leaderCommit)
        writer.write(entries)
    }

    init(from reader: inout WireReader) throws(WireError) {
        term = try reader.readVarint()
        leaderID = try reader.readUInt64()
        prevLogIndex = try reader.readVarint()
        prevLogTerm = try reader.readVarint()
        leaderCommit = try reader.readVarint()
        entries = try reader.read([LogEntry].self)
    }
}

// MARK: Sample values, the same for Chorus and protobuf

/// The ping every ping benchmark encodes or decodes.
let samplePing = SWIMPing(
    sequence: 1_234_567, source: 0x1234_5678_9ABC_DEF0, target: 0x0FED_CBA9_8765_4321,
    incarnation: 42, piggyback: [])

/// An AppendEntries with 8 entries of 64 bytes each, as a leader sends
/// under load.
let sampleAppendEntries = AppendEntries(
    term: 7, leaderID: 0x1234_5678_9ABC_DEF0, prevLogIndex: 1_000_000, prevLogTerm: 7,
    leaderCommit: 999_990,
    entries: (0..<8).map { i in
        LogEntry(term: 7, index: 1_000_001 + UInt64(i), data: (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
    })

extension Chorus_Bench_SwimPing {
    /// The protobuf twin of a ``SWIMPing``.
    init(_ ping: SWIMPing) {
        self.init()
        sequence = ping.sequence
        source = ping.source
        target = ping.target
        incarnation = ping.incarnation
        piggyback = ping.piggyback.map { update in
            var member = Chorus_Bench_MemberUpdate()
            member.node = update.node
            member.incarnation = update.incarnation
            member.status = UInt32(update.status)
            return member
        }
    }
}

extension Chorus_Bench_AppendEntries {
    /// The protobuf twin of an ``AppendEntries``.
    init(_ request: AppendEntries) {
        self.init()
        term = request.term
        leaderID = request.leaderID
        prevLogIndex = request.prevLogIndex
        prevLogTerm = request.prevLogTerm
        leaderCommit = request.leaderCommit
        entries = request.entries.map { entry in
            var log = Chorus_Bench_LogEntry()
            log.term = entry.term
            log.index = entry.index
            log.data = Data(entry.data)
            return log
        }
    }
}
