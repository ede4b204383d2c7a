// SPDX-License-Identifier: MIT
//
// proc.h -- what the load generators read about processes: CPU time from
// getrusage and /proc/PID/stat, peak RSS from /proc/PID/status.

#ifndef RRB_PROC_H
#define RRB_PROC_H

#ifdef __cplusplus
extern "C" {
#endif

// proc_self_cpu: this process's user plus system time, in seconds.
double proc_self_cpu(void);

// proc_cpu: process pid's user plus system time in seconds; 0 when pid is
// not positive or cannot be read.
double proc_cpu(int pid);

// proc_peak_rss_kb: process pid's peak resident set (VmHWM) in KiB; 0
// when it cannot be read.
long proc_peak_rss_kb(int pid);

// proc_rss_kb: process pid's resident set now (VmRSS) in KiB; 0 when it
// cannot be read.
long proc_rss_kb(int pid);

#ifdef __cplusplus
}
#endif

#endif // RRB_PROC_H
