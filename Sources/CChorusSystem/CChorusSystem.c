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
