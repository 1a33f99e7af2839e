// epoll and eventfd, which Swift's Glibc module does not export (Linux only).
#ifndef REFEREE_CEPOLL_H
#define REFEREE_CEPOLL_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdint.h>

static const uint32_t referee_epoll_in = EPOLLIN;
static const uint32_t referee_epoll_out = EPOLLOUT;
static const uint32_t referee_epoll_oneshot = EPOLLONESHOT;
#endif
