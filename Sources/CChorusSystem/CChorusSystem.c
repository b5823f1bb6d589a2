#define _GNU_SOURCE
#include "CChorusSystem.h"

#ifdef __linux__
#include <string.h>

int CChorus_epoll_create1(int flags) { return epoll_create1(flags); }

int CChorus_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int CChorus_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        data[i] = evs[i].data.u64;
    }
    return n;
}

int CChorus_eventfd(unsigned int initval, int flags) { return eventfd(initval, flags); }

size_t CChorus_mmsghdr_size(void) { return sizeof(struct mmsghdr); }

void CChorus_mmsghdr_set(void *vec, unsigned int index, struct iovec *iov,
                         void *addr, socklen_t addrlen) {
    struct mmsghdr *m = ((struct mmsghdr *)vec) + index;
    memset(m, 0, sizeof(*m));
    m->msg_hdr.msg_iov = iov;
    m->msg_hdr.msg_iovlen = 1;
    m->msg_hdr.msg_name = addr;
    m->msg_hdr.msg_namelen = addrlen;
}

void CChorus_mmsghdr_set_namelen(void *vec, unsigned int index, socklen_t addrlen) {
    ((struct mmsghdr *)vec)[index].msg_hdr.msg_namelen = addrlen;
}

unsigned int CChorus_mmsghdr_len(const void *vec, unsigned int index) {
    return ((const struct mmsghdr *)vec)[index].msg_len;
}

socklen_t CChorus_mmsghdr_namelen(const void *vec, unsigned int index) {
    return ((const struct mmsghdr *)vec)[index].msg_hdr.msg_namelen;
}

int CChorus_mmsghdr_flags(const void *vec, unsigned int index) {
    return ((const struct mmsghdr *)vec)[index].msg_hdr.msg_flags;
}

int CChorus_recvmmsg(int fd, void *vec, unsigned int vlen, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)vec, vlen, flags, NULL);
}

int CChorus_sendmmsg(int fd, void *vec, unsigned int vlen, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)vec, vlen, flags);
}
#endif

#if defined(__x86_64__)
#include <string.h>
#include <nmmintrin.h>

int CChorus_crc32c_hardware_available(void) { return __builtin_cpu_supports("sse4.2"); }

__attribute__((target("sse4.2")))
uint32_t CChorus_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count) {
    const unsigned char *p = bytes;
    uint64_t wide = crc;
    for (; count >= 8; count -= 8, p += 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        wide = _mm_crc32_u64(wide, word);
    }
    uint32_t narrow = (uint32_t)wide;
    for (; count > 0; count--, p++) narrow = _mm_crc32_u8(narrow, *p);
    return narrow;
}
#else
int CChorus_crc32c_hardware_available(void) { return 0; }

uint32_t CChorus_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return crc;
}
#endif
