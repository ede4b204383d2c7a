// SPDX-License-Identifier: MIT
//
// errmap.h -- errno to rr_err, in one place, and the sentence behind
// rr_last_error: the one thread-local buffer every module that fails
// before it has an object to hang a message on writes to.

#ifndef RR_ERRMAP_H
#define RR_ERRMAP_H

// rr__err_from_errno turns a system errno into the rr_err that carries
// its meaning: EADDRINUSE is RR_EADDRINUSE, EACCES/EPERM/EROFS are
// RR_EACCES, EMFILE/ENFILE RR_EMFILE, ENOMEM/ENOBUFS RR_ENOMEM, a missing
// address or family (EADDRNOTAVAIL, EAFNOSUPPORT, ENOENT, ENOTDIR, ELOOP,
// ENAMETOOLONG) RR_EADDRNOTAVAIL, ETIMEDOUT RR_ETIMEDOUT, EINVAL
// RR_EINVAL; everything else (resets, broken pipes, refusals) is
// RR_ECLOSED.  0 is RR_OK.
int rr__err_from_errno(int err);

// rr__set_last_error formats the calling thread's rr_last_error sentence
// (truncated to RR__LAST_ERROR_MAX - 1 bytes).
#define RR__LAST_ERROR_MAX 256
__attribute__((format(printf, 1, 2))) void rr__set_last_error(const char *fmt,
                                                              ...);

#endif // RR_ERRMAP_H
