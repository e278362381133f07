#!/usr/bin/env python3
"""CPU time, in microseconds, of eventmill processes, Redis and PostgreSQL, read from /proc.

Usage: cpu.py <redis-pid>[,<redis-pid>...] <postmaster-pid> [eventmill-pid ...]
Prints one line: "<eventmill-us> <redis-us> <postgres-us>". Redis is the sum over the
given redis-server pids (the masters of a cluster). PostgreSQL is the postmaster, its
live children (backends, walwriter, checkpointer...) and the children it already reaped
(cutime/cstime), so short-lived backends are counted too.
"""
import os
import sys

TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17, ppid=4
    return {"ppid": int(fields[1]), "self": int(fields[11]) + int(fields[12]), "children": int(fields[13]) + int(fields[14])}


def main():
    redis_pids, pg_pid = [int(p) for p in sys.argv[1].split(",") if p], int(sys.argv[2])
    em = sum((stat(p) or {"self": 0})["self"] for p in map(int, sys.argv[3:]))
    redis = sum((stat(p) or {"self": 0})["self"] for p in redis_pids)
    master = stat(pg_pid) or {"self": 0, "children": 0}
    pg = master["self"] + master["children"]
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s and s["ppid"] == pg_pid:
                pg += s["self"]
    print(f"{em * TICK_US:.0f} {redis * TICK_US:.0f} {pg * TICK_US:.0f}")


main()
