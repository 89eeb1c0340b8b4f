#!/usr/bin/env python3
"""A/B of two builds of the drop-in on the workloads of `make bench` (quick
sizes), run alternately in one session so that the machine's noise falls on
both alike; prints each workload's median ns/op for A and B, B/A, and the
geometric mean of B/A.

    scripts/ab-dropin.py A.so B.so [--bench PATH] [--reps N] [--env-b VAR=VALUE ...]

--env-b sets an environment variable for B's runs only (A and B may then be
the same library: the cost of an option).  Used to measure what a change
costs (BENCHMARKS.md: statistics)."""
import argparse
import json
import math
import statistics
import subprocess

KIB, MIB = 1024, 1024 * 1024
WORKLOADS = [
    ["pair", "16", "3000000"], ["pair", "128", "3000000"], ["pair", str(KIB), "2000000"],
    ["pair", str(8 * KIB), "1000000"], ["pair", str(64 * KIB), "300000"], ["pair", str(MIB), "50000"],
    ["batch", "50000", "10"], ["churn", "100000", "1000000", "512"],
    ["churn", "100000", "200000", str(64 * KIB)], ["churn", "20000", "100000", str(256 * KIB)],
    ["prodcons", "500000"], ["threads", "1", "2000000", "1000"], ["threads", "2", "2000000", "1000"],
    ["realloc", "8", str(4 * MIB), "6"], ["grow", "4", str(MIB), "20"], ["larson", "4", "10", "2000", "20000"],
    ["xfree", "2", "1000", "1000"], ["exchange", "4", "100000", str(64 * KIB)],
    ["bursts", "4", "2000", "1000", str(KIB)],
]


def run(bench, lib, args, extra=None):
    env = {"LD_PRELOAD": lib}
    env.update(extra or {})
    out = subprocess.run([bench] + args, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ns_per_op"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--bench", default="build-bench/bench/mpool_bench")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--env-b", action="append", default=[], help="VAR=VALUE for B's runs")
    o = ap.parse_args()
    env_b = dict(kv.split("=", 1) for kv in o.env_b)
    ratios = []
    print(f"{'workload':40} {'A ns/op':>10} {'B ns/op':>10} {'B/A':>7}")
    for w in WORKLOADS:
        ta, tb = [], []
        for _ in range(o.reps):
            ta.append(run(o.bench, o.a, w))
            tb.append(run(o.bench, o.b, w, env_b))
        ma, mb = statistics.median(ta), statistics.median(tb)
        ratios.append(mb / ma)
        print(f"{' '.join(w):40} {ma:10.2f} {mb:10.2f} {mb / ma:7.3f}", flush=True)
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"geometric mean of B/A over {len(ratios)} workloads: {geo:.3f}")


if __name__ == "__main__":
    main()
