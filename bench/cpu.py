"""CPU seconds of a running process, read from ``/proc``: who spent the box's two cores.

Throughput on a 2-core machine is a budget of CPU shared by the server, DynamoDB Local
and the load generator; dividing each one's CPU time by the requests served shows
which of them sets the ceiling.
"""

from __future__ import annotations

import os
import resource


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (all its threads), or 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 0, utime 11, stime 12 (proc(5), minus 3).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reaped_children_seconds() -> float:
    """User + system CPU seconds of every child this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
