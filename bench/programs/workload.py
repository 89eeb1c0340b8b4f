"""Allocation-heavy Python workload timed by bench/run.py (workload 9).

Builds and drops dicts, lists, strings and objects of many sizes, the way a
data-munging script does: parse records, index them, aggregate, render.
Deterministic (fixed seed).  Usage: python3 workload.py [ROUNDS [RECORDS]]
"""
import random
import sys


class Record:
    __slots__ = ("key", "name", "tags", "values")

    def __init__(self, key, name, tags, values):
        self.key = key
        self.name = name
        self.tags = tags
        self.values = values


def make_lines(rng, n):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    for i in range(n):
        tags = ",".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
        values = " ".join(str(rng.random() * 1000) for _ in range(rng.randint(1, 12)))
        yield f"{i}\t{'x' * rng.randint(1, 200)}-{i}\t{tags}\t{values}"


def run(rounds, n):
    rng = random.Random(42)
    checksum = 0
    for _ in range(rounds):
        records = []
        for line in make_lines(rng, n):
            key, name, tags, values = line.split("\t")
            records.append(Record(int(key), name, tags.split(","),
                                  [float(v) for v in values.split()]))
        by_tag = {}
        for r in records:
            for t in r.tags:
                by_tag.setdefault(t, []).append(r)
        sums = {t: sum(sum(r.values) for r in rs) for t, rs in by_tag.items()}
        text = "\n".join(f"{r.key}:{r.name[:20]}:{len(r.values)}" for r in records)
        blobs = [bytes(rng.randint(1, 5000)) for _ in range(n // 10)]
        big = [list(range(rng.randint(100, 3000))) for _ in range(n // 60)]
        checksum += len(text) + len(sums) + sum(map(len, blobs)) + sum(map(len, big))
        del records, by_tag, text, blobs, big
    return checksum


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    print(run(rounds, records))
