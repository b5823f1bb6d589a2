import EventCore
import WireCodec

/// What opening a ``FileRaftStorage`` finds in its directory: the newest
/// snapshot, and the log and hard state that replaying the segments in
/// creation order builds.
///
/// A segment starting at index `f` with previous term `p` continues the log
/// when the log holds `(f - 1, p)`: the entries after `f - 1` are cut off
/// (a later segment supersedes the earlier segments from `f` on). One
/// starting at or below the snapshot's index without matching the log
/// restarts it there (the log a snapshot discarded, or segments compacted
/// away). Any other start is a missing segment or damage. Within a segment
/// each record's entries replace the log from their first index on.
///
/// Only the last segment can end in a torn record: a segment is synced
/// whole before the next one is created. A bad record there is cut off when
/// it is not the segment's first (which was synced before the segment got
/// its name) and no valid record starts anywhere after it; any other bad
/// record throws and nothing is dropped.
struct WALRecovery {
    /// The directory read.
    let directory: String
    /// The newest snapshot.
    private(set) var snapshot: RaftSnapshot?
    /// The log the segments hold.
    private(set) var stored = StoredEntries()
    /// The last hard state recorded.
    private(set) var hardState = RaftHardState()
    /// The segments holding live entries, in creation order, their first
    /// indices rising.
    private(set) var segments: [WALSegment] = []
    /// The last segment, open for appending, if there is one.
    private(set) var lastSegmentFile: DurableFile?
    /// The valid length of the last segment, in bytes.
    private(set) var lastSegmentSize = 0
    /// Bytes of a torn tail at the end of the last segment, for the store
    /// to cut off (past ``lastSegmentSize``).
    private(set) var truncatedBytes = 0
    /// Files no longer needed, to remove once the store is open: temporary
    /// files and older snapshots.
    private(set) var obsoleteFiles: [String] = []
    /// Segments a later one supersedes, to remove after ``obsoleteFiles``,
    /// newest first (a crash between two removals then leaves the oldest,
    /// which the log still replays past; removed oldest first, the next
    /// one left would start after a gap).
    private(set) var supersededSegments: [String] = []

    /// Whether the log holds anything a replica acknowledged: a term, a
    /// vote, a commit index, an entry or a snapshot. A log created and
    /// never written to holds none of them.
    var holdsState: Bool { snapshot != nil || stored.lastIndex > 0 || hardState != RaftHardState() }

    /// Reads `directory`, and writes nothing: a torn tail of the last
    /// segment is reported in ``truncatedBytes``, not cut.
    ///
    /// - Throws: ``RaftStorageError``: `.io`; `.corrupt` or
    ///   `.unsupportedVersion` for a snapshot or segment that does not
    ///   parse, a damaged record before the tail, records that do not fit
    ///   the log; `.missingSegment` for a gap between segments, or no
    ///   segment beside a snapshot.
    init(directory: String) throws(RaftStorageError) {
        self.directory = directory
        let names: [String]
        do throws(DurableFileError) {
            names = try DurableFile.contents(ofDirectory: directory)
        } catch {
            throw RaftStorageError(error)
        }
        obsoleteFiles = names.filter { name in
            guard name.hasSuffix(StorageFileName.temporarySuffix) else { return false }
            let final = String(name.dropLast(StorageFileName.temporarySuffix.count))
            return StorageFileName.parseSegment(final) != nil || StorageFileName.parseSnapshot(final) != nil
        }
        try loadSnapshot(names)
        let found = names.compactMap { name in StorageFileName.parseSegment(name).map { (name, $0) } }
            .sorted { $0.1.sequence < $1.1.sequence }
        for (position, (name, numbers)) in found.enumerated() {
            let path = directory + "/" + name
            if position > 0, found[position - 1].1.sequence == numbers.sequence {
                throw RaftStorageError(.corrupt, file: path, detail: "two segments are numbered \(numbers.sequence)")
            }
            try replaySegment(path, sequence: numbers.sequence, firstIndex: numbers.firstIndex,
                              isLast: position == found.count - 1)
        }
        // Names carry the sequence in 20 digits: newest first is descending.
        supersededSegments.sort(by: >)
        if found.isEmpty, snapshot != nil {
            throw RaftStorageError(.missingSegment, file: directory,
                                   detail: "a snapshot but no log segment (the hard state is lost)")
        }
    }

    /// Loads the newest snapshot; the older ones become obsolete.
    private mutating func loadSnapshot(_ names: [String]) throws(RaftStorageError) {
        let found = names.compactMap { name in StorageFileName.parseSnapshot(name).map { (name, $0) } }
            .sorted { ($0.1.index, $0.1.term) < ($1.1.index, $1.1.term) }
        guard let (name, numbers) = found.last else { return }
        let path = directory + "/" + name
        let bytes: [UInt8]
        do throws(DurableFileError) {
            bytes = try DurableFile(path: path, creating: false).readAll()
        } catch {
            throw RaftStorageError(error)
        }
        let loaded = try SnapshotFile.decode(bytes, file: path)
        guard loaded.index == numbers.index, loaded.term == numbers.term else {
            throw RaftStorageError(.corrupt, file: path, offset: 12,
                                   detail: "holds index \(loaded.index) of term \(loaded.term), its name says otherwise")
        }
        snapshot = loaded
        obsoleteFiles += found.dropLast().map(\.0)
    }

    /// Replays the segment at `path`.
    private mutating func replaySegment(
        _ path: String, sequence: UInt64, firstIndex: UInt64, isLast: Bool
    ) throws(RaftStorageError) {
        let file: DurableFile
        let bytes: [UInt8]
        do throws(DurableFileError) {
            file = try DurableFile(path: path, creating: false)
            bytes = try file.readAll()
        } catch {
            throw RaftStorageError(error)
        }
        let end = try bytes.withUnsafeBytes { raw in
            Result { () throws(RaftStorageError) in
                let header = try WALSegment.Header(reading: raw, file: path)
                guard header.firstIndex == firstIndex else {
                    throw RaftStorageError(.corrupt, file: path, offset: 12,
                                           detail: "starts at index \(header.firstIndex), its name says \(firstIndex)")
                }
                try begin(WALSegment(sequence: sequence, header: header), path: path)
                return try replayRecords(raw, header: header, path: path, isLast: isLast)
            }
        }.get()
        guard isLast else { return }
        truncatedBytes = bytes.count - end
        lastSegmentFile = file
        lastSegmentSize = end
    }

    /// Joins `segment` to the log built so far (see the type's comment).
    private mutating func begin(_ segment: WALSegment, path: String) throws(RaftStorageError) {
        let header = segment.header
        let previous = header.firstIndex - 1
        if previous >= stored.base.index, previous <= stored.lastIndex, stored.term(at: previous) == header.previousTerm {
            stored.removeSuffix(after: previous)
            supersededSegments += segments.filter { $0.header.firstIndex >= header.firstIndex }.map(\.name)
            segments.removeAll { $0.header.firstIndex >= header.firstIndex }
        } else if let snapshot, previous <= snapshot.index {
            if previous == snapshot.index, header.previousTerm != snapshot.term {
                throw RaftStorageError(
                    .corrupt, file: path, offset: 20,
                    detail: "follows index \(previous) of term \(header.previousTerm), "
                        + "the snapshot there is of term \(snapshot.term)")
            }
            stored.reset(after: previous, term: header.previousTerm)
            supersededSegments += segments.map(\.name)
            segments = []
        } else if previous > stored.lastIndex {
            throw RaftStorageError(
                .missingSegment, file: path, offset: 12,
                detail: "starts at index \(header.firstIndex), "
                    + "the earlier segments and the snapshot end at \(stored.lastIndex)")
        } else {
            throw RaftStorageError(
                .corrupt, file: path, offset: 20,
                detail: "follows index \(previous) of term \(header.previousTerm), which the earlier segments do not hold")
        }
        segments.append(segment)
    }

    /// Applies the records of a segment; returns where the valid ones end.
    private mutating func replayRecords(
        _ bytes: UnsafeRawBufferPointer, header: WALSegment.Header, path: String, isLast: Bool
    ) throws(RaftStorageError) -> Int {
        let firstIndex = header.firstIndex
        var offset = WALSegment.Header.size
        var records = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            guard let length = WALRecord.validLength(rest, salt: header.salt) else {
                try checkTornTail(rest, at: offset, salt: header.salt, recordsBefore: records, path: path, isLast: isLast)
                return offset
            }
            let record: WALRecord
            do throws(WireError) {
                record = try WALRecord(decoding: UnsafeRawBufferPointer(rebasing: rest[..<length]))
            } catch {
                throw RaftStorageError(.corrupt, file: path, offset: offset + error.offset,
                                       detail: "a record whose checksum matches does not parse: \(error.detail)")
            }
            if let first = record.entries.first?.index {
                guard first >= firstIndex, stored.accepts(record.entries) else {
                    throw RaftStorageError(
                        .corrupt, file: path, offset: offset,
                        detail: "a record of entries \(first) ... \(first &+ UInt64(record.entries.count) &- 1) "
                            + "does not continue the log \(stored.firstIndex) ... \(stored.lastIndex) "
                            + "in a segment starting at \(firstIndex)")
                }
                stored.replaceSuffix(with: record.entries)
            }
            if let recorded = record.hardState { hardState = recorded }
            offset += length
            records += 1
        }
        // Cut right after the header: the first record, synced before the
        // segment was named, is missing, and with it the hard state it
        // holds (recovery would fall back to an earlier one: a vote given
        // in this segment's term would be forgotten).
        guard records > 0 else {
            throw RaftStorageError(
                .corrupt, file: path, offset: offset,
                detail: "the segment ends after its header: its first record, synced before the segment was named, is missing")
        }
        return offset
    }

    /// Throws unless the bad record at `offset` (the start of `rest`) is a
    /// torn tail.
    private func checkTornTail(
        _ rest: UnsafeRawBufferPointer, at offset: Int, salt: UInt64, recordsBefore: Int, path: String, isLast: Bool
    ) throws(RaftStorageError) {
        let bad = "a record fails its checksum or is cut short"
        guard isLast else {
            throw RaftStorageError(.corrupt, file: path, offset: offset, detail: "\(bad) in a segment that is not the last")
        }
        guard recordsBefore > 0 else {
            throw RaftStorageError(.corrupt, file: path, offset: offset,
                                   detail: "\(bad): the segment's first, synced before the segment was named")
        }
        if let next = WALRecord.firstValid(after: rest, salt: salt) {
            throw RaftStorageError(.corrupt, file: path, offset: offset,
                                   detail: "\(bad) and a valid record follows at offset \(offset + next)")
        }
        // A write a crash cut short ends the file inside the record, or
        // left zeros where its data never reached the disk. A whole record
        // without a sector of zeros was written, perhaps synced and
        // acknowledged, and damaged since: cutting it could forget a vote.
        guard let end = WALRecord.claimedEnd(rest), end <= rest.count else { return }
        guard !DurableFile.holdsZeroSector(UnsafeRawBufferPointer(rebasing: rest[..<end]), at: offset) else { return }
        throw RaftStorageError(
            .corrupt, file: path, offset: offset,
            detail: "the last record fails its checksum, whole and with no sector of zeros: damaged after it was written, not torn")
    }
}
