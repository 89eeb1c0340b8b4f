"""programs/workload.py - a Python workload that is hard on malloc.

Run by tests/programs/run.sh with and without libmpool-malloc.so preloaded;
the two runs must print the same lines.  Everything printed depends only on
the fixed seed (never on addresses, timing or hash randomisation): digests
are sha256 of canonical encodings, counts and sorted extracts.

    python3 workload.py [SCALE]     SCALE multiplies the sizes (default 1)
"""
import collections
import gc
import hashlib
import heapq
import json
import random
import re
import sys
import zlib

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
rng = random.Random(20240601)


def n(count):
    return max(1, int(count * SCALE))


def sha(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:32]


def report(label, value):
    print(f"{label}: {value}", flush=True)


LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORDS = sorted({"".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 12)))
                for _ in range(n(8000))})
report("vocabulary", len(WORDS))

# ---- dicts: word counts, nested dicts, deletions -----------------------------
text = [rng.choice(WORDS) for _ in range(n(600_000))]
counts = {}
for w in text:
    counts[w] = counts.get(w, 0) + 1
counter = collections.Counter(text)
assert counter == counts
top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
report("dict top words", top)

by_prefix = collections.defaultdict(dict)
for w, c in counts.items():
    by_prefix[w[:2]][w] = c
for key in list(by_prefix):
    if len(by_prefix[key]) % 3 == 0:
        del by_prefix[key]
report("dict prefixes kept", (len(by_prefix), sum(len(d) for d in by_prefix.values())))

big = {i: str(i) * (i % 7 + 1) for i in range(n(300_000))}
for i in range(0, len(big), 3):
    del big[i]
for i in range(0, n(300_000), 5):
    big[-i] = [i, str(i)]
report("dict churn", (len(big), sha(repr(sorted(big.items(), key=lambda kv: kv[0])[:1000]))))
del big

# ---- strings -----------------------------------------------------------------
sentence = " ".join(text)
report("join", (len(sentence), sha(sentence)))
upper = sentence.upper().replace("A", "4").replace("E", "3")
report("upper/replace", sha(upper))
parts = sentence.split(" ")
assert parts == text
report("regex words with 'qu'", len(re.findall(r"\b\w*qu\w*\b", sentence)))
fmt = "".join(f"{i:08x}|{w:>14}|{i * 0.5:.3f}\n" for i, w in enumerate(text[:n(100_000)]))
report("format", (len(fmt), sha(fmt)))
acc = ""
for w in text[:n(50_000)]:
    acc += w            # repeated realloc of one growing string
report("concat", (len(acc), sha(acc)))
unicode_words = ["".join(chr(0x400 + ord(ch) - 97) for ch in w) for w in WORDS]
report("unicode", sha("\u2028".join(unicode_words).encode("utf-8")))
del upper, fmt, acc

# ---- sets --------------------------------------------------------------------
a = {w for w in text[: len(text) // 2]}
b = {w for w in text[len(text) // 2:] if len(w) > 4}
pairs = {(w, len(w)) for w in text[: n(200_000)]}
report("sets", (len(a | b), len(a & b), len(a - b), len(a ^ b), len(pairs)))
frozen = {frozenset(w) for w in WORDS}
report("frozensets", len(frozen))
del a, b, pairs, frozen

# ---- lists and sorting -------------------------------------------------------
nums = [rng.randrange(1 << 40) for _ in range(n(500_000))]
report("sorted ints", sha(repr(sorted(nums)[:: max(1, len(nums) // 1000)])))
records = [(rng.choice(WORDS), rng.randrange(1000), rng.random()) for _ in range(n(300_000))]
records.sort(key=lambda r: (r[0], -r[1], r[2]))
report("sorted records", sha(repr(records[:: max(1, len(records) // 2000)])))
report("heap smallest", heapq.nsmallest(5, nums))
lst = []
for i in range(n(100_000)):
    lst.append(i)
    if i % 3 == 0:
        lst.insert(len(lst) // 2, -i)
    if i % 7 == 0:
        lst.pop(0)
report("list churn", (len(lst), sum(lst)))
nested = [[j for j in range(i % 50)] for i in range(n(100_000))]
report("nested lists", sum(map(len, nested)))
del nums, records, lst, nested


# ---- objects and the cyclic collector ----------------------------------------
class Node:
    def __init__(self, value):
        self.value = value
        self.children = []
        self.parent = None


roots = []
for t in range(n(200)):
    root = Node(t)
    stack = [root]
    for i in range(500):
        child = Node(i)
        parent = stack[rng.randrange(len(stack))]
        child.parent = parent       # cycles: parent <-> child
        parent.children.append(child)
        stack.append(child)
    roots.append(root)


def tree_sum(node):
    total, todo = 0, [node]
    while todo:
        x = todo.pop()
        total += x.value
        todo.extend(x.children)
    return total


report("trees", sum(tree_sum(r) for r in roots))
del roots, root, stack, child, parent
report("gc collected something", gc.collect() > 0)

# ---- JSON round trip of a large generated document ---------------------------


def make_record(i):
    return {
        "id": i,
        "name": " ".join(rng.choice(WORDS) for _ in range(3)),
        "tags": [rng.choice(WORDS) for _ in range(rng.randrange(8))],
        "score": round(rng.uniform(-1e6, 1e6), 6),
        "active": rng.random() < 0.5,
        "nested": {"level": rng.randrange(10),
                   "path": [rng.randrange(1000) for _ in range(rng.randrange(6))],
                   "note": None if rng.random() < 0.3 else rng.choice(WORDS) * 3,
                   "text": "caf\u00e9 \u2603 " + rng.choice(WORDS)},
    }


doc = {"version": 1, "records": [make_record(i) for i in range(n(100_000))],
       "index": {w: i for i, w in enumerate(WORDS)}}
dumped = json.dumps(doc, sort_keys=True)
report("json dumped", (len(dumped), sha(dumped)))
loaded = json.loads(dumped)
assert loaded == doc
again = json.dumps(loaded, sort_keys=True)
assert again == dumped
# indent= takes the pure-Python encoder: many more small objects
pretty = json.dumps(loaded["records"][: n(15_000)], sort_keys=True, indent=2, ensure_ascii=False)
report("json pretty", (len(pretty), sha(pretty.encode("utf-8"))))
report("json records with tag 0", sum(1 for r in loaded["records"] if WORDS[0] in r["tags"]))
compressed = zlib.compress(dumped.encode(), 6)
report("zlib", (len(compressed), zlib.decompress(compressed) == dumped.encode()))
del doc, loaded, again, pretty, compressed, dumped

# ---- bytes / bytearray growth ------------------------------------------------
buf = bytearray()
for i in range(n(200_000)):
    buf += i.to_bytes(4, "little") * (i % 5 + 1)
    if i % 1000 == 999:
        del buf[: len(buf) // 3]
report("bytearray", (len(buf), sha(bytes(buf))))

report("done", "ok")
