// SPDX-License-Identifier: MIT
//
// io.c -- the plain socket stream; see io.h.

#include "transport/io.h"

#include <sys/socket.h>
#include <unistd.h>

static ssize_t
plain_recv(rr_io *io, void *p, size_t n)
{
    return recv(io->fd, p, n, 0);
}

static ssize_t
plain_send(rr_io *io, const void *p, size_t n)
{
    return send(io->fd, p, n, MSG_NOSIGNAL);
}

static void
plain_shutdown(rr_io *io)
{
    shutdown(io->fd, SHUT_WR);
}

static void
plain_close(rr_io *io)
{
    close(io->fd);
    io->fd = -1;
}

static const rr_io_ops plain_ops = {
    .recv = plain_recv,
    .send = plain_send,
    .shutdown = plain_shutdown,
    .close = plain_close,
};

void
rr__io_plain(rr_io *io, int fd)
{
    io->ops = &plain_ops;
    io->fd = fd;
}
