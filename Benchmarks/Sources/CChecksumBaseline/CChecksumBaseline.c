#include "CChecksumBaseline.h"

#include <string.h>

#if defined(__x86_64__)

int CChecksum_hasHardwareCRC32C(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t CChecksum_hardwareCRC32C(const void *bytes, size_t count) {
    const unsigned char *p = bytes;
    uint64_t crc = 0xFFFFFFFFu;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = __builtin_ia32_crc32di(crc, word);
        p += 8;
        count -= 8;
    }
    uint32_t crc32 = (uint32_t)crc;
    while (count > 0) {
        crc32 = __builtin_ia32_crc32qi(crc32, *p);
        p++;
        count--;
    }
    return ~crc32;
}

#else

int CChecksum_hasHardwareCRC32C(void) { return 0; }

uint32_t CChecksum_hardwareCRC32C(const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return 0;
}

#endif
