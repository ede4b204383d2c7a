// SPDX-License-Identifier: MIT
//
// io.h -- the byte stream under a connection.
//
// conn.c frames, heartbeats and flow-controls; how bytes reach the peer
// is this seam's job.  A plain socket is the only stream today; a TLS
// stream slots in here, under the connection, so neither the server nor
// the channel learns of it.  The calls follow recv(2)/send(2): a stream
// that cannot move bytes now says EAGAIN, and the connection waits for
// its socket to be readable or writable again.

#ifndef RR_IO_H
#define RR_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct rr_io rr_io;

typedef struct rr_io_ops {
    // Up to n bytes into p: > 0 bytes read, 0 at the peer's EOF, -1 with
    // errno (EAGAIN: nothing for now).
    ssize_t (*recv)(rr_io *io, void *p, size_t n);
    // Up to n bytes from p: > 0 bytes taken, -1 with errno (EAGAIN: the
    // stream is full for now).  Never raises SIGPIPE.
    ssize_t (*send)(rr_io *io, const void *p, size_t n);
    // Ends this side's output after what was sent (a FIN for TCP).
    void (*shutdown)(rr_io *io);
    // Releases the stream and its descriptor.
    void (*close)(rr_io *io);
} rr_io_ops;

struct rr_io {
    const rr_io_ops *ops;
    int fd; // what the connection's watchers wait on
};

// rr__io_plain makes io the plain socket fd.
void rr__io_plain(rr_io *io, int fd);

#endif // RR_IO_H
