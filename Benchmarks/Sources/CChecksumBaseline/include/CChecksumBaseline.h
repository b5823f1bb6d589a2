// The peer for WireCodec's CRC32C: the same checksum computed with the
// SSE4.2 `crc32` instruction, 8 bytes per instruction in one dependency
// chain (the simple use of the hardware; interleaved streams go faster).
#ifndef CCHECKSUM_BASELINE_H
#define CCHECKSUM_BASELINE_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has SSE4.2 (x86-64 only; 0 elsewhere).
int CChecksum_hasHardwareCRC32C(void);

/// The CRC-32C (Castagnoli, initial value and final XOR 0xFFFFFFFF) of
/// `count` bytes at `bytes`, with the hardware instruction. Call only when
/// CChecksum_hasHardwareCRC32C() returns 1; otherwise it returns 0.
uint32_t CChecksum_hardwareCRC32C(const void *bytes, size_t count);

#endif
