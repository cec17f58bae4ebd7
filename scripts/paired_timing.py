"""Paired whole-process timing for the bench-*.sh scripts: two commands run
alternately, each round one of each in alternating order, so that the
machine's other work falls on both alike. Imported by the scripts' inline
Python (PYTHONPATH=scripts)."""

import resource
import statistics
import subprocess
import time


def timed(cmd):
    """Wall and CPU time (ms) of one run of `cmd`, its output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter_ns()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter_ns() - t0) / 1e6
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1e3
    return wall, cpu


class Side:
    """One command's times over the rounds."""

    def __init__(self, runs):
        self.runs = runs

    @property
    def wall(self):
        return statistics.median(w for w, _ in self.runs)

    @property
    def min_wall(self):
        return min(w for w, _ in self.runs)

    @property
    def cpu(self):
        return statistics.median(c for _, c in self.runs)


def paired(runs, ours, other):
    """Times `ours` and `other` (argument lists) over `runs` paired rounds
    after two warm-up runs of each (page cache, .pyc files). Returns
    (ours, other, ratio): each a Side, and the median of the per-round
    ratios other / ours of wall time."""
    for cmd in (ours, other, ours, other):
        timed(cmd)
    res = {"ours": [], "other": []}
    ratios = []
    for i in range(runs):
        order = [("ours", ours), ("other", other)]
        if i % 2:
            order.reverse()
        pair = {}
        for name, cmd in order:
            pair[name] = timed(cmd)
            res[name].append(pair[name])
        ratios.append(pair["other"][0] / pair["ours"][0])
    return Side(res["ours"]), Side(res["other"]), statistics.median(ratios)
