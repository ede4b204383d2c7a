// SPDX-License-Identifier: MIT
//
// proc.c -- process CPU time and memory from /proc; see proc.h.

#include "proc.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

double
proc_self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_stime.tv_sec +
           ((double) ru.ru_utime.tv_usec + (double) ru.ru_stime.tv_usec) / 1e6;
}

double
proc_cpu(int pid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); // the name may hold spaces
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return 0;
    return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

// One "Key:   N kB" line of /proc/PID/status.
static long
status_kb(int pid, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long kb = 0;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
            sscanf(line + klen + 1, "%ld", &kb) == 1)
            break;
    }
    fclose(fp);
    return kb;
}

long
proc_peak_rss_kb(int pid)
{
    return status_kb(pid, "VmHWM");
}

long
proc_rss_kb(int pid)
{
    return status_kb(pid, "VmRSS");
}
