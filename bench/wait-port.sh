# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# wait-port.sh -- sourced by the benchmark scripts (compare.sh,
# compare-commits.sh, limit-parts.sh).
#
# wait_port FILE: prints the port a server just started with its standard
# output in FILE announces ("port N"), once it has; prints nothing if it
# announced none within 5 s.
wait_port() {
    for _ in $(seq 250); do
        [ -s "$1" ] && break
        sleep 0.02 # waiting for another process to print, not a test
    done
    awk '{print $2}' "$1"
}
