// libFuzzer entry point for FileAcceptorStore's recovery, compiled by
// Scripts/fuzz against the WireCodec, EventCore and CASPaxos modules (each
// built with the same sanitizers) and the CChorusSystem C shim.
//
// Every input becomes an acceptor log on disk: most inputs a header and
// batches whose checksums match (so the records inside them are parsed,
// which random bytes would rarely reach), some of them spoiled. The store
// opens it as a restart must. `load()` must return a state or throw an
// `AcceptorStoreError`, never trap; and when it returns one, the log must
// keep it: loading again gives the same state, and a write synced on top of
// it (compacting the log, at the small threshold) is there after a reload.
// A broken expectation is a `precondition` failure, a crash libFuzzer keeps.
//
// Input layout: byte 0 picks the header (its format version, or a
// damaged magic), then chunks `[length][kind][length bytes]`, each a batch
// of the log (`kind` bit 0: its checksum spoiled; bit 1: cut short, as a
// torn tail), and whatever is left goes at the end as raw bytes.

import CASPaxos
import EventCore

#if canImport(Glibc)
import Glibc
#endif

/// Where each input's log is written (memory-backed, reused; removed when
/// the fuzzer exits normally, as at the end of its time).
let logPath: String = {
    atexit { unlink("/dev/shm/chorus-fuzz-acceptor-log-\(getpid())") }
    return "/dev/shm/chorus-fuzz-acceptor-log-\(getpid())"
}()
/// The salt of every log built here.
let salt: UInt64 = 0x5EED_5A17_0DD5_CA5E

/// The log an input describes.
func log(from input: UnsafeRawBufferPointer) -> [UInt8] {
    guard let control = input.first else { return [] }
    // Format versions 0 ... 7: 2 ... 5 and others.
    var bytes = FileAcceptorStore.header(version: UInt32(control & 0x07), salt: salt)
    if control & 0x80 != 0 { bytes[7] ^= 0xFF }
    var offset = 1
    while offset + 2 <= input.count {
        let length = Int(input[offset])
        let kind = input[offset + 1]
        guard offset + 2 + length <= input.count else { break }
        var batch = AcceptorLogBatch.seal(Array(input[(offset + 2)..<(offset + 2 + length)]), salt: salt)
        offset += 2 + length
        // The checksum follows the marker and the length.
        if kind & 1 != 0 { batch[8] ^= 1 }
        if kind & 2 != 0 { batch.removeLast(min(batch.count, 1 + Int(kind >> 2))) }
        bytes += batch
    }
    bytes += input[offset...]
    return bytes
}

/// Replaces the file at `logPath` with `bytes`.
func writeFile(_ bytes: [UInt8]) {
    do throws(DurableFileError) {
        try DurableFile(path: logPath, truncating: true).append(bytes)
    } catch {
        preconditionFailure("cannot write \(logPath): \(error)")
    }
}

/// Opens the log as a restart does and loads it; nil if the store refuses it.
/// The store is released on return, and its lock with it.
func reload() -> AcceptorSnapshot? {
    do throws(AcceptorStoreError) {
        return try FileAcceptorStore(path: logPath, opening: .existing, compactionThreshold: 256).load()
    } catch {
        return nil
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAcceptorLog(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    writeFile(log(from: UnsafeRawBufferPointer(start: data, count: size)))
    // One store at a time: a store holds the log's lock until it is
    // released, and a second one is refused with `.locked`.
    guard let state = reload() else { return 0 }
    precondition(reload() == state, "a log that loaded loads again to another state")
    let store: FileAcceptorStore
    do throws(AcceptorStoreError) {
        store = try FileAcceptorStore(path: logPath, opening: .existing, compactionThreshold: 256)
        let loaded = try store.load()
        precondition(loaded == state, "a log that loaded loads again to another state")
    } catch {
        preconditionFailure("a log that loaded is refused on the next opening: \(error)")
    }
    let write = AcceptorWrite.register(
        key: [0x6B],
        state: RegisterState(
            promised: Ballot(counter: 9, proposer: NodeID(9)), accepted: Ballot(counter: 9, proposer: NodeID(9)),
            value: [1, 2, 3], parent: Ballot(counter: 8, proposer: NodeID(9))))
    // A register with a parent: an older log's sync rewrites it in format 6.
    store.apply(write)
    do throws(AcceptorStoreError) {
        try store.sync()
    } catch {
        preconditionFailure("a loaded log refused a write: \(error)")
    }
    var expected = state
    expected.apply(write)
    store.close()
    precondition(reload() == expected, "a write synced on a loaded log is not there after a reload")
    return 0
}
