#!/usr/bin/env python3
"""bench/run.py - run mpool and its peers on the same workloads, side by side.

    python3 bench/run.py [--profile quick|full|smoke] [--build DIR] [--out DIR]
                         [--reps N] [--allocators a,b,...] [--no-fastpath] [--no-chart]

Allocators: mpool (drop-in, LD_PRELOAD of DIR/libmpool-malloc.so), mpool-api
(DIR/bench/mpool_bench_api: the mpool API called directly), glibc (no
preload), mimalloc, jemalloc and tcmalloc (Debian's libraries, preloaded;
skipped with a note when not installed).  Every workload runs for every
allocator in turn (A B C ... A B C ...), --reps times over.  Each figure is a
median with its min-max and its ratio to the best *peer* (glibc, mimalloc,
jemalloc, tcmalloc) in the same run: below 1.00 beats every peer.

The fast-path figure is counted, not timed: instructions per malloc+free pair
under valgrind --tool=callgrind (the pair loop at two lengths, the difference
divided by the difference of the lengths, as scripts/instr-per-pair.sh does).

Workloads (bench/bench.c subcommands unless said otherwise; sizes per
profile in PROFILES): 1 pair, 2 batch, 3 churn (blocks up to 512 B, 64 KiB
and 256 KiB), 4 producer/consumer, 5 threads ×T, 6 realloc growth (+1/8, and
+25% steps to 1 MiB writing each new tail), 7 larson-like, 8 fragmentation,
9 real programs (a Python script, sqlite3), 10 batches of small blocks freed
whole by other threads, 11 random sizes 16 B - 64 KiB passed to a neighbour
thread (time and peak RSS), 12 many short bursts on T threads (time and peak
RSS), 13 a small single-thread program (peak RSS and wall time of the whole
process), 14 redis-server under redis-benchmark (one row per command: 1e9 /
requests per second, and the server's peak RSS; skipped when redis-server
or redis-benchmark is missing).  Debian's redis-server links libjemalloc, so
its "glibc" column preloads DIR/bench/libbench-glibc.so (glibc's malloc put
back in front); each run checks in INFO memory which allocator served it.

The summary gives, per allocator, the geometric mean of its ratios to the
best peer over every time row (and over the peak RSS table).

A separate section (bench/fixed.cpp, DIR/bench/mpool_bench_fixed) compares
mpool's fixed-size pools with Boost.Pool's object_pool, APR pools, talloc
and malloc/free under each peer: pairs, batches of 1000, building 1 M small
objects and freeing them at once or one by one (--no-fixed skips it; with
--only it runs when a pattern matches "fixed").

Writes OUT/latest.md, OUT/latest.json and OUT/latest.png (gnuplot; skipped
with a note when gnuplot is missing) and prints the tables.  Raw run output
goes to OUT/raw/ (not kept in git).
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS = os.path.join(HERE, "programs")

PEERS = ["glibc", "mimalloc", "jemalloc", "tcmalloc"]
ORDER = ["mpool", "mpool-api"] + PEERS

# Preloaded peers: the Debian package and the library it installs.
PEER_LIBS = {
    "mimalloc": ("libmimalloc2.0", "libmimalloc.so.2"),
    "jemalloc": ("libjemalloc2", "libjemalloc.so.2"),
    "tcmalloc": ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
}
LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
            "/usr/lib", "/usr/local/lib"]

KIB = 1024
MIB = 1024 * 1024

# Sizes of each workload per profile.  quick: `make bench`, about five
# minutes on two cores; full: `make bench-full`; smoke: seconds (ctest).
PROFILES = {
    "quick": dict(
        reps=5,
        pair=[(16, 3000000), (128, 3000000), (KIB, 2000000), (8 * KIB, 1000000),
              (64 * KIB, 300000), (MIB, 50000)],
        batch=(50000, 10), churn_small=(100000, 1000000), churn_64k=(100000, 200000),
        prodcons=1000000, threads=[1, 2, 4, 8], threads_ops=2000000, threads_live=10000,
        realloc=(8, 4 * MIB, 6), larson=(4, 10, 2000, 20000), frag=600000,
        python=(1, 20000), python_scale=0.1, sqlite_rows=50000,
        churn_256k=(20000, 100000), grow=(4, MIB, 20), xfree=(2, 1000, 1000),
        exchange=(4, 100000, 64 * KIB), bursts=(4, 2000, 1000, KIB), tiny=3000,
        redis=dict(n=10000, big_n=4000, big_size=16 * KIB, big_keys=4096, reps=3),
        fastpath_n=(100000, 1100000), fastpath_sizes=[16, 1024],
        arena_phase=[(2000, 600), (50000, 24)]),
    "full": dict(
        reps=7,
        pair=[(16, 10000000), (128, 10000000), (KIB, 5000000), (8 * KIB, 2000000),
              (64 * KIB, 1000000), (MIB, 200000)],
        batch=(50000, 40), churn_small=(100000, 4000000), churn_64k=(100000, 1000000),
        prodcons=4000000, threads=[1, 2, 4, 8, 16, 32], threads_ops=8000000,
        threads_live=10000, realloc=(8, 8 * MIB, 10), larson=(8, 20, 2000, 40000),
        frag=1500000, python=(3, 20000), python_scale=0.5, sqlite_rows=250000,
        churn_256k=(50000, 400000), grow=(4, MIB, 60), xfree=(4, 1000, 2000),
        exchange=(8, 400000, 64 * KIB), bursts=(8, 4000, 1000, KIB), tiny=3000,
        redis=dict(n=100000, big_n=40000, big_size=16 * KIB, big_keys=4096, reps=None),
        fastpath_n=(100000, 1100000), fastpath_sizes=[16, 128, 1024, 8 * KIB],
        arena_phase=[(2000, 2400), (50000, 96)]),
    "smoke": dict(
        reps=1,
        pair=[(16, 1000), (MIB, 10)],
        batch=(1000, 2), churn_small=(1000, 5000), churn_64k=(200, 1000), prodcons=5000,
        threads=[1, 2], threads_ops=5000, threads_live=100, realloc=(2, 64 * KIB, 1),
        larson=(2, 2, 100, 500), frag=2000, python=(1, 200), python_scale=0.01,
        sqlite_rows=300, churn_256k=(100, 500), grow=(1, 64 * KIB, 1), xfree=(1, 100, 20),
        exchange=(2, 2000, 64 * KIB), bursts=(2, 20, 100, KIB), tiny=3000,
        redis=dict(n=500, big_n=200, big_size=16 * KIB, big_keys=100, reps=None),
        fastpath_n=(1000, 11000), fastpath_sizes=[16],
        arena_phase=[(200, 3)]),
}


def size_label(n):
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= KIB and n % KIB == 0:
        return f"{n // KIB} KiB"
    return f"{n} B"


# ---- Allocators -------------------------------------------------------------

def find_lib(name):
    for d in LIB_DIRS:
        path = os.path.join(d, name)
        if os.path.exists(path):
            return os.path.realpath(path)
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.strip().startswith(name + " "):
                return os.path.realpath(line.rsplit("=>", 1)[1].strip())
    except OSError:
        pass
    return None


def pkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    except OSError:
        return None


def allocators(build, wanted):
    """name -> {bin, preload, note, version}; unavailable ones have 'skip'."""
    bench = os.path.join(build, "bench", "mpool_bench")
    api = os.path.join(build, "bench", "mpool_bench_api")
    dropin = os.path.join(build, "libmpool-malloc.so")
    out = {}
    for name in ORDER:
        if name not in wanted:
            continue
        a = {"bin": bench, "preload": None, "version": None}
        if name == "mpool":
            a["preload"] = dropin
            a["version"] = mpool_version(build)
            if not os.path.exists(dropin):
                a["skip"] = f"{dropin} not built"
        elif name == "mpool-api":
            a["bin"] = api
            a["version"] = mpool_version(build)
            if not os.path.exists(api):
                a["skip"] = f"{api} not built"
        elif name == "glibc":
            a["version"] = platform.libc_ver()[1] or pkg_version("libc6")
        else:
            pkg, lib = PEER_LIBS[name]
            env_path = os.environ.get(f"BENCH_{name.upper()}")
            path = env_path or find_lib(lib)
            a["version"] = pkg_version(pkg)
            if path and os.path.exists(path):
                a["preload"] = path
            else:
                a["skip"] = (f"{lib} not found (Debian package {pkg}; "
                             f"scripts/install-deps.sh --bench installs it)")
        if name != "mpool-api" and not os.path.exists(bench):
            a["skip"] = f"{bench} not built"
        out[name] = a
    return out


def mpool_version(build):
    version = None
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_PROJECT_VERSION:"):
                    version = line.split("=", 1)[1].strip()
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "include"],
                               capture_output=True, text=True).stdout.strip()
        if rev:
            version = f"{version or '?'} (git {rev}{', src modified' if dirty else ''})"
    except OSError:
        pass
    return version


def child_env(preload):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MPOOL_") and k not in ("LD_PRELOAD", "MALLOC_CONF")}
    if preload:
        env["LD_PRELOAD"] = preload
    return env


# ---- Workloads ----------------------------------------------------------------

class Workload:
    """One command per allocator; rows are the figures read from each run."""

    def __init__(self, wid, label, argv=None, program=None, rows=None, note=None, runner=None,
                 skip=None, reps=None):
        self.id = wid
        self.label = label
        self.argv = argv          # driver subcommand (list of str)
        self.program = program    # function(alloc) -> (argv, stdin path or None)
        self.runner = runner      # function(name, alloc, raw, timeout) -> result: runs itself
        self.rows = rows or [(wid, label, "ns/op", lambda r: r["ns_per_op"])]
        self.note = note
        self.skip = skip          # why it cannot run here (then it is left out, with a note)
        self.reps = reps          # at most this many repetitions (None: the profile's)
        self.cleanup = None

    def real_program(self):
        """A program of its own: mpool reaches it only through the drop-in."""
        return self.program is not None or self.runner is not None


def peak_row(wid, label):
    """The row of a workload's peak RSS (child_maxrss_kb: the launcher's ru_maxrss of
    the process; for a server, its VmHWM)."""
    return (f"{wid}-peak", f"{label}: peak RSS", "MiB", lambda r: r["child_maxrss_kb"] / 1024.0)


def python_exe():
    # Debian's interpreter (dynamically linked: LD_PRELOAD reaches its malloc);
    # else this one (sys.executable is the real binary, not a pyenv shim).
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def program_files():
    """The drop-in tests' workloads (tests/programs/) when present, else ours."""
    theirs = os.path.join(ROOT, "tests", "programs")
    if all(os.path.exists(os.path.join(theirs, f)) for f in ("workload.py", "workload.sql")):
        return theirs, "tests/programs"
    return PROGRAMS, "bench/programs"


def sqlite_script(src_dir, rows, raw):
    """A copy of workload.sql with the generated row count set to rows (the
    first recursive CTE's bound); the file as it is if it has no such bound."""
    with open(os.path.join(src_dir, "workload.sql")) as f:
        sql = f.read()
    if "SELECT 80000 AS rows" in sql:  # bench/programs/workload.sql
        sql, n = sql.replace("SELECT 80000 AS rows", f"SELECT {rows} AS rows", 1), 1
    else:                              # tests/programs/workload.sql
        sql, n = re.subn(r"(WITH RECURSIVE \w+\(\w+\) AS \(SELECT [01] UNION ALL SELECT \w+ \+ 1 "
                         r"FROM \w+ WHERE \w+ < )(\d+)\)", lambda m: f"{m.group(1)}{rows})", sql,
                         count=1)
    path = os.path.join(raw, "workload.sql")
    with open(path, "w") as f:
        f.write(sql)
    return path, (rows if n else None)


# ---- redis-server under redis-benchmark ---------------------------------------

REDIS_TESTS = ["SET", "GET", "INCR", "LPUSH", "LPOP"]  # redis-benchmark -t, in its order


def free_port():
    with socket.socket() as s_:
        s_.bind(("127.0.0.1", 0))
        return s_.getsockname()[1]


def redis_call(port, command, timeout=5.0):
    """Sends one inline command; returns the reply's text (a bulk reply's body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(command.encode() + b"\r\n")
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"$"):
                head, _, body = data.partition(b"\r\n")
                if len(body) >= int(head[1:]) + 2:
                    return body[:int(head[1:])].decode(errors="replace")
            elif data.endswith(b"\r\n"):
                return data.decode(errors="replace").strip()
    return data.decode(errors="replace").strip()


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def redis_benchmark(bench, port, args, timeout):
    """Runs redis-benchmark -q; returns test name -> requests per second."""
    r = subprocess.run([bench, "-h", "127.0.0.1", "-p", str(port), "-q"] + args,
                       capture_output=True, text=True, timeout=timeout, env=child_env(None))
    rps = {}
    for line in re.split(r"[\r\n]+", r.stdout):
        m = re.match(r"\s*([A-Z_]+): ([0-9.]+) requests per second", line)
        if m:
            rps[m.group(1)] = float(m.group(2))
    if r.returncode != 0 or not rps:
        tail = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"redis-benchmark {' '.join(args)}: exit {r.returncode}: {tail}")
    return rps


def redis_start(server, preload, raw, log):
    """Starts redis-server on a free loopback port, without persistence;
    returns (process, port) once it answers PING.  A server that exits first
    (another process took the port in between) is tried again, twice."""
    for _ in range(3):
        port = free_port()
        argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", raw, "--logfile", log]
        with open(log, "a") as f:
            f.write(f"$ {'LD_PRELOAD=' + preload + ' ' if preload else ''}{shlex.join(argv)}\n")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=child_env(preload),
                                start_new_session=True)
        t0 = time.time()
        while proc.poll() is None:
            try:
                if redis_call(port, "PING", 1.0) == "+PONG":
                    return proc, port
            except OSError:
                pass
            if time.time() - t0 > 20:
                redis_stop(proc)
                raise RuntimeError("redis-server did not answer within 20 s")
            time.sleep(0.02)
    raise RuntimeError(f"redis-server exited with {proc.returncode} (see {log})")


def redis_stop(proc, port=None):
    if port is not None:
        try:
            redis_call(port, "SHUTDOWN NOSAVE")
        except OSError:
            pass  # it closes the connection as it goes
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
        proc.wait()


def redis_runner(server, bench, cfg, glibc_shim):
    """A runner for Workload: starts redis-server under the allocator (the
    "glibc" column preloads glibc_shim: the Debian build links libjemalloc),
    runs redis-benchmark against it, reads the server's peak RSS (VmHWM) and
    INFO memory, and shuts it down."""
    big = f"SET {size_label(cfg['big_size'])}"

    def run(name, a, raw, timeout):
        preload = a["preload"]
        if name == "glibc":
            if not os.path.exists(glibc_shim):
                raise RuntimeError(f"{glibc_shim} not built (without it redis runs jemalloc)")
            preload = glibc_shim
        log = os.path.join(raw, f"redis.{name}.log")
        t0 = time.time()
        proc, port = redis_start(server, preload, raw, log)
        try:
            rps = redis_benchmark(bench, port, ["-t", ",".join(t.lower() for t in REDIS_TESTS),
                                                "-n", str(cfg["n"])], timeout)
            missing = [t for t in REDIS_TESTS if t not in rps]
            if missing:
                raise RuntimeError(f"redis-benchmark gave no figure for {', '.join(missing)}")
            rps[big] = redis_benchmark(bench, port, [
                "-t", "set", "-n", str(cfg["big_n"]), "-d", str(cfg["big_size"]),
                "-r", str(cfg["big_keys"])], timeout)["SET"]
            info = dict(line.split(":", 1) for line in
                        redis_call(port, "INFO memory").splitlines() if ":" in line)
            peak = vm_hwm_kb(proc.pid)
        finally:
            redis_stop(proc, port)
        if proc.returncode != 0:
            raise RuntimeError(f"redis-server exited with {proc.returncode} at shutdown "
                               f"(see {log})")
        # Which allocator held the data: jemalloc's own count (allocator_allocated,
        # from mallctl) against redis's count of its blocks (used_memory).  Under
        # any other column than jemalloc, a jemalloc heap means the preload did
        # not take, and the figures would not be that allocator's.
        used = int(info.get("used_memory", 0))
        je = int(info.get("allocator_allocated", 0))
        heap = "libjemalloc" if used and je >= used / 2 else "the preloaded allocator"
        with open(log, "a") as f:
            f.write(f"rps {json.dumps(rps)}; VmHWM {peak} kB; used_memory {used}; "
                    f"allocator_allocated {je}; heap: {heap}; exit {proc.returncode}\n")
        if heap == "libjemalloc" and name != "jemalloc":
            raise RuntimeError(f"libjemalloc, not {name}, served the server (allocator_allocated "
                               f"{je} of used_memory {used})")
        return {"rps": rps, "wall_s": time.time() - t0, "child_maxrss_kb": peak,
                "used_memory_peak": int(info.get("used_memory_peak", 0)),
                "mem_allocator": info.get("mem_allocator", "").strip(), "heap": heap}
    return run, big


def redis_workload(p, build):
    label = "14. redis"
    cfg = p.get("redis")
    server, bench = shutil.which("redis-server"), shutil.which("redis-benchmark")
    if not (server and bench):
        return Workload("redis", label, skip=(
            "redis-server or redis-benchmark not found (Debian package redis-server; "
            "scripts/install-deps.sh --bench installs it)"))
    shim = os.path.join(build, "bench", "libbench-glibc.so")
    runner, big = redis_runner(server, bench, cfg, shim)
    rows = [(f"redis-{t.lower().replace(' ', '-')}", f"{label} {t}", "ns/req",
             lambda r, t=t: 1e9 / r["rps"][t]) for t in REDIS_TESTS + [big]]
    rows.append(peak_row("redis", label))
    version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout.strip()
    linked = subprocess.run(["ldd", server], capture_output=True, text=True).stdout
    how = ("links libjemalloc dynamically: a preload takes its malloc, calloc, realloc, free "
           "and malloc_usable_size (mallctl statistics stay jemalloc's); the glibc column "
           "preloads bench/libbench-glibc.so" if "libjemalloc" in linked else
           "not linked with libjemalloc: a preload takes its malloc")
    note = (f"{version}; {how}. redis-benchmark -q -t {','.join(t.lower() for t in REDIS_TESTS)} "
            f"-n {cfg['n']}, then -t set -n {cfg['big_n']} -d {cfg['big_size']} "
            f"-r {cfg['big_keys']} (50 clients, loopback); ns/req = 1e9 / requests per second; "
            f"peak RSS: the server's VmHWM before shutdown")
    if cfg.get("reps"):
        note += f"; {cfg['reps']} repetitions at most"
    return Workload("redis", label, runner=runner, rows=rows, note=note, reps=cfg.get("reps"))


def workloads(p, raw, only=None, build=""):
    ws = []
    for size, n in p["pair"]:
        ws.append(Workload(f"pair-{size}", f"1. pair {size_label(size)}", ["pair", size, n]))
    n, rounds = p["batch"]
    ws.append(Workload("batch", "2. batch", ["batch", n, rounds]))
    live, steps = p["churn_small"]
    ws.append(Workload("churn-small", "3. churn ≤512 B", ["churn", live, steps, 512]))
    live, steps = p["churn_64k"]
    ws.append(Workload("churn-64k", "3. churn ≤64 KiB", ["churn", live, steps, 64 * KIB]))
    live, steps = p["churn_256k"]
    ws.append(Workload("churn-256k", "3. churn ≤256 KiB", ["churn", live, steps, 256 * KIB]))
    ws.append(Workload("prodcons", "4. producer/consumer", ["prodcons", p["prodcons"]]))
    for t in p["threads"]:
        ws.append(Workload(f"threads-{t}", f"5. threads ×{t}",
                           ["threads", t, p["threads_ops"], p["threads_live"]]))
    nbuf, maxsize, rounds = p["realloc"]
    ws.append(Workload("realloc", "6. realloc growth", ["realloc", nbuf, maxsize, rounds]))
    nbuf, maxsize, rounds = p["grow"]
    ws.append(Workload("grow", f"6. realloc +25% to {size_label(maxsize)}",
                       ["grow", nbuf, maxsize, rounds]))
    t, rounds, slots, ops = p["larson"]
    ws.append(Workload("larson", f"7. larson-like ×{t}", ["larson", t, rounds, slots, ops]))
    mib = lambda key: (lambda r: r[key] / 1024.0)  # noqa: E731
    ws.append(Workload("frag", "8. fragmentation", ["frag", p["frag"]], rows=[
        ("frag", "8. fragmentation", "ns/op", lambda r: r["ns_per_op"]),
        ("frag-peak", "8. frag: peak RSS", "MiB", lambda r: r["child_maxrss_kb"] / 1024.0),
        ("frag-freed", "8. frag: RSS after free 90%", "MiB", mib("freed_rss_kb")),
        ("frag-trimmed", "8. frag: RSS after trim", "MiB", mib("trimmed_rss_kb")),
        ("frag-reused", "8. frag: RSS after reuse", "MiB", mib("reused_rss_kb")),
    ]))
    py = python_exe()
    src, src_name = program_files()
    if src_name == "tests/programs":
        py_args = [str(p["python_scale"])]
    else:
        py_args = [str(x) for x in p["python"]]
    py_argv = [py, os.path.join(src, "workload.py")] + py_args
    ws.append(Workload("python", "9. python script", program=lambda a: (py_argv, None),
                       rows=[("python", "9. python script", "s", lambda r: r["wall_s"])],
                       note=f"{py} {src_name}/workload.py {' '.join(py_args)}"))
    sql, rows = sqlite_script(src, p["sqlite_rows"], raw)
    rows_text = f"{rows} rows" if rows else "rows as in the file"
    sqlite_cli = shutil.which("sqlite3")
    # A database file on tmpfs when there is one: the program's work, not the disk's.
    db_dir = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else raw
    db = os.path.join(db_dir, f"mpool-bench-{os.getpid()}.db")

    def sqlite_prog(a):
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        if sqlite_cli:
            return [sqlite_cli, "-batch", db], sql
        code = ("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                "c.executescript(''.join(l for l in sys.stdin if not l.startswith('.')))")
        return [py, "-c", code, db], sql
    if sqlite_cli:
        how = f"{sqlite_cli} -batch DB < {src_name}/workload.sql ({rows_text}; DB in {db_dir})"
    else:
        how = (f"no sqlite3 CLI: {py}'s sqlite3 module runs {src_name}/workload.sql "
               f"({rows_text}; dot-commands dropped)")
    ws.append(Workload("sqlite", "9. sqlite", program=sqlite_prog,
                       rows=[("sqlite", "9. sqlite", "s", lambda r: r["wall_s"])], note=how))
    ws[-1].cleanup = lambda: [os.remove(db + s_) for s_ in ("", "-journal", "-wal", "-shm")
                              if os.path.exists(db + s_)]
    pairs, batch, batches = p["xfree"]
    ws.append(Workload("xfree", f"10. batches freed by others ×{2 * pairs}",
                       ["xfree", pairs, batch, batches]))
    t, steps, maxsize = p["exchange"]
    label = f"11. exchange ≤{size_label(maxsize)} ×{t}"
    ws.append(Workload("exchange", label, ["exchange", t, steps, maxsize], rows=[
        ("exchange", label, "ns/op", lambda r: r["ns_per_op"]), peak_row("exchange", label)]))
    t, bursts, most, maxsize = p["bursts"]
    label = f"12. bursts ×{t}"
    ws.append(Workload("bursts", label, ["bursts", t, bursts, most, maxsize], rows=[
        ("bursts", label, "ns/op", lambda r: r["ns_per_op"]), peak_row("bursts", label)]))
    label = "13. small program"
    ws.append(Workload("tiny", label, ["tiny", p["tiny"]], rows=[
        ("tiny", label, "ms", lambda r: r["wall_s"] * 1000.0),
        ("tiny-peak", f"{label}: peak RSS", "KiB", lambda r: float(r["child_maxrss_kb"]))]))
    ws.append(redis_workload(p, build))
    if only:
        ws = [w for w in ws if any(re.search(o, w.id) for o in only)]
    return ws


def run_one(w, name, a, launcher, raw, timeout):
    """Runs workload w under allocator a; returns the result dict or raises.

    Every run goes through the driver's `spawn` launcher: a small fresh
    process that forks the measured one, so its peak RSS (ru_maxrss) does not
    start from the size of this Python process."""
    tag = f"{w.id}.{name}"
    if w.runner is not None:
        try:
            return w.runner(name, a, raw, timeout)
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"{tag}: timed out after {e.timeout} s")
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            raise RuntimeError(f"{tag}: {e}")
    if w.argv is not None:
        argv, stdin_path = [a["bin"]] + [str(x) for x in w.argv], None
    else:
        argv, stdin_path = w.program(a)
    full = [launcher, "spawn", a["preload"] or "-", stdin_path or "-"] + argv
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=child_env(None), start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise RuntimeError(f"{tag}: timed out after {timeout} s")
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    with open(os.path.join(raw, tag + ".log"), "a") as f:
        f.write(f"$ {' '.join(full)}\n{stdout}{stderr}exit {proc.returncode}\n")
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{tag}: exit {proc.returncode}: {tail}")
    spawn, result = None, None
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("spawn"):
                spawn = d
            elif "workload" in d:
                result = d
    if spawn is None or (w.argv is not None and result is None):
        raise RuntimeError(f"{tag}: no result line")
    result = result or {}
    result["wall_s"] = spawn["wall_s"]
    result["child_maxrss_kb"] = spawn["maxrss_kb"]
    return result


# ---- Fast path: instructions per pair under callgrind -----------------------

def callgrind_count(argv, env):
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv,
                       env=env, capture_output=True, text=True)
    m = re.search(r"Collected\s*:\s*(\d+)", r.stderr)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"callgrind failed ({' '.join(argv)}): "
                           f"{(r.stderr.strip().splitlines() or ['no output'])[-1]}")
    return int(m.group(1))


def fastpath(allocs, build, p):
    """size -> column -> instructions per malloc+free pair."""
    if not shutil.which("valgrind"):
        return None, "valgrind not found: no fast-path figures (apt-get install valgrind)"
    n1, n2 = p["fastpath_n"]
    cols = [(name, a) for name, a in allocs.items() if "skip" not in a]
    unsafe = os.path.join(build, "bench", "mpool_pair")
    res = {}
    for size in p["fastpath_sizes"]:
        row = {}
        for name, a in cols:
            env = child_env(a["preload"])
            c1 = callgrind_count([a["bin"], "pair", str(size), str(n1)], env)
            c2 = callgrind_count([a["bin"], "pair", str(size), str(n2)], env)
            row[name] = (c2 - c1) / (n2 - n1)
        if os.path.exists(unsafe):  # bench/pair.c: a pool with thread_safe = false
            env = child_env(None)
            c1 = callgrind_count([unsafe, str(n1), str(size)], env)
            c2 = callgrind_count([unsafe, str(n2), str(size)], env)
            row["mpool-api, thread_safe=false"] = (c2 - c1) / (n2 - n1)
        res[size] = row
        print(f"  fast path {size_label(size)}: " +
              ", ".join(f"{k} {v:.0f}" for k, v in row.items()), flush=True)
    return res, None


# ---- Fixed-size object pools (bench/fixed.cpp) ----------------------------------
# mpool's fixed pools (mpool_fixed_*, one-thread and thread safe) side by side
# with Boost.Pool's object_pool, APR pools, talloc, and malloc/free of the same
# size under every malloc peer, on the workloads of bench/fixed.cpp.  Runs
# after the main workloads, interleaved among its own columns, with the same
# launcher; ratios are to the best of the *fixed peers* (every column but
# mpool's).  A peer that was not found at build time is skipped with a note.

FIXED_PROFILES = {
    "quick": dict(size=32, pair=3000000, batch=(1000, 2000), build=1000000,
                  fastpath_n=(100000, 1100000)),
    "full": dict(size=32, pair=10000000, batch=(1000, 10000), build=1000000,
                 fastpath_n=(100000, 1100000)),
    "smoke": dict(size=32, pair=1000, batch=(1000, 2), build=5000, fastpath_n=(1000, 11000)),
}
FIXED_LIBS = [("mpool fixed", "mpool"), ("mpool fixed (thread safe)", "mpool-ts"),
              ("boost object_pool", "boost"), ("apr", "apr"), ("talloc", "talloc")]


def fixed_workloads(fp):
    size, n = fp["size"], fp["build"]
    per, rounds = fp["batch"]
    count = f"{n // 1000000} M" if n >= 1000000 else f"{n:,}"
    return [
        Workload("fixed-pair", f"F1. pair {size} B", ["pair", size, fp["pair"]]),
        Workload("fixed-batch", f"F2. batches of {per:,}", ["batch", size, per, rounds]),
        Workload("fixed-build", f"F3. build {count}, free all at once", ["build", size, n]),
        Workload("fixed-build-each", f"F4. build {count}, free each", ["build-each", size, n]),
    ]


def fixed_columns(build, allocs):
    """column -> {bin, preload, lib}; unavailable ones have 'skip'."""
    binary = os.path.join(build, "bench", "mpool_bench_fixed")
    cols = {}
    for col, lib in FIXED_LIBS:
        c = {"bin": binary, "preload": None, "lib": lib}
        if not os.path.exists(binary):
            c["skip"] = f"{binary} not built"
        else:
            r = subprocess.run([binary, lib, "build", "32", "1"], capture_output=True, text=True)
            if '"skip"' in r.stdout:
                c["skip"] = json.loads(r.stdout.strip().splitlines()[-1])["skip"]
        cols[col] = c
    for name in PEERS:  # malloc/free, under each malloc peer
        a = allocs.get(name)
        if a is None:
            continue
        c = {"bin": binary, "preload": a["preload"], "lib": "malloc"}
        if "skip" in a:
            c["skip"] = a["skip"]
        elif not os.path.exists(binary):
            c["skip"] = f"{binary} not built"
        cols[f"malloc ({name})"] = c
    return cols


def fixed_section(build, allocs, profile, reps, raw, launcher, timeout, fastpath_on):
    """Runs the fixed-size workloads; returns (markdown lines, json dict, notes)."""
    fp = FIXED_PROFILES[profile]
    cols = fixed_columns(build, allocs)
    notes = [f"fixed pools: {n} skipped: {c['skip']}" for n, c in cols.items() if "skip" in c]
    live = {n: c for n, c in cols.items() if "skip" not in c}
    ws = fixed_workloads(fp)
    runs = {w.id: {n: [] for n in live} for w in ws}
    errors = {}
    print(f"bench: fixed-size pools: {len(ws)} workloads, columns: {', '.join(live)}", flush=True)
    quadratic = fp["build"] > 50000  # Boost's object_pool::free keeps its free list sorted: O(n)
    if quadratic and "boost object_pool" in live:
        notes.append("fixed pools: boost object_pool skips F4: object_pool::free keeps the free "
                     "list ordered, O(n) per free, and 1 M frees one by one take more than 300 s")
    for rep in range(reps):
        for w in ws:
            for name, c in live.items():
                if c["lib"] == "apr" and w.id != "fixed-build":
                    continue  # APR frees no single object
                if c["lib"] == "boost" and w.id == "fixed-build-each" and quadratic:
                    continue
                if (w.id, name) in errors:
                    continue
                wl = Workload(w.id, w.label, [c["lib"]] + w.argv)
                try:
                    runs[w.id][name].append(run_one(wl, name.replace(" ", "_"), c, launcher, raw,
                                                    timeout))
                except (RuntimeError, OSError, ValueError) as e:
                    errors[(w.id, name)] = str(e)
                    print(f"bench: FAILED {e}", file=sys.stderr, flush=True)
        print(f"  fixed pools: repetition {rep + 1}/{reps} done", flush=True)
    rows = []
    for w in ws:
        cells = {}
        for name in live:
            if (w.id, name) in errors:
                cells[name] = {"error": errors[(w.id, name)]}
            elif runs[w.id][name]:
                vals = [r["ns_per_op"] for r in runs[w.id][name]]
                cells[name] = summarize(vals)
                cells[name]["runs"] = vals
        ok = {k: v for k, v in cells.items() if "error" not in v}
        peers = [(v["median"], k) for k, v in ok.items() if not k.startswith("mpool")]
        best = min(peers) if peers else None
        for v in ok.values():
            v["ratio"] = v["median"] / best[0] if best else None
        rows.append({"id": w.id, "label": w.label, "unit": "ns/op", "best_peer": best[1] if best else None,
                     "cells": cells})
    instr = {}
    if fastpath_on and shutil.which("valgrind"):
        n1, n2 = fp["fastpath_n"]
        for name, c in live.items():
            if c["lib"] == "apr":
                continue
            try:
                argv = [c["bin"], c["lib"], "pair-loop", str(fp["size"])]
                env = child_env(c["preload"])
                c1 = callgrind_count(argv + [str(n1)], env)
                c2 = callgrind_count(argv + [str(n2)], env)
                instr[name] = (c2 - c1) / (n2 - n1)
            except RuntimeError as e:
                notes.append(f"fixed pools: instructions of {name}: {e}")
    header = ["workload", "unit"] + list(live)
    md = ["## Fixed-size object pools (bench/fixed.cpp)\n",
          md_table(header, [[r["label"], r["unit"]] + [cell_text(r["cells"].get(c)) for c in live]
                            for r in rows]) + "\n",
          f"Objects of {fp['size']} B. ns/op: the thread's CPU time per object, page faults included (pair: one alloc+free; batches: "
          f"one object of a batch allocated and freed, mpool through mpool_fixed_alloc_batch and "
          f"free_batch; build: one object allocated and written, then all freed at once: "
          f"mpool_fixed_destroy, the object_pool's destructor, apr_pool_destroy, talloc_free of "
          f"the parent context, free of each block for malloc; free each: the same freed one by "
          f"one). Ratios are to the best column that is not mpool's (Boost.Pool, APR, talloc, "
          f"malloc under each peer).\n"]
    if instr:
        md.append(md_table(["column", "instructions per alloc+free pair"],
                           [[k, f"{v:.0f}"] for k, v in instr.items()]) + "\n")
        n1, n2 = fp["fastpath_n"]
        md.append(f"`valgrind --tool=callgrind` on the bare pair loop (`mpool_bench_fixed LIB "
                  f"pair-loop {fp['size']} N`, mpool called directly, the others through a virtual "
                  f"call each) at N = {n1} and {n2}.\n")
    return md, {"rows": rows, "instructions_per_pair": instr or None}, notes


# ---- Statistics and output ----------------------------------------------------

def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def add_ratios(cells, peer_names=PEERS):
    """Adds 'ratio' (median / best peer median) to each cell; returns the best peer."""
    peers = [(cells[p]["median"], p) for p in peer_names if p in cells and cells[p]["median"] > 0]
    best = min(peers) if peers else None
    for c in cells.values():
        c["ratio"] = c["median"] / best[0] if best else None
    return best[1] if best else None


TIME_UNITS = ("ns/op", "ns/req", "ms", "s")  # the rows the time summary covers


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summary(rows, peak_rows, cols):
    """allocator -> geometric mean of its ratios to the best peer over the time
    rows, and over the peak RSS table, with the number of rows in each."""
    out = {}
    for name in cols:
        t = [r["cells"][name]["ratio"] for r in rows
             if r["unit"] in TIME_UNITS and (r["cells"].get(name) or {}).get("ratio")]
        m = [r["cells"][name]["ratio"] for r in peak_rows
             if (r["cells"].get(name) or {}).get("ratio")]
        out[name] = {"time_geomean_ratio": geomean(t), "time_rows": len(t),
                     "peak_rss_geomean_ratio": geomean(m), "peak_rss_rows": len(m)}
    return out


def geomean_text(ratio, count):
    return f"×{ratio:.2f} ({count} row{'' if count == 1 else 's'})" if ratio else "–"


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def cell_text(c, spread=True):
    if c is None:
        return "–"
    if "error" in c:
        return "failed"
    s = fmt(c["median"])
    if spread and c["n"] > 1:
        s += f" [{fmt(c['min'])}–{fmt(c['max'])}]"
    if c.get("ratio") is not None:
        s += f" ×{c['ratio']:.2f}"
    return s


def md_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"  # noqa
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def machine_info(build):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cc = None
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_C_COMPILER:"):
                    cc = line.split("=", 1)[1].strip()
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    build_type = line.split("=", 1)[1].strip()
    except OSError:
        build_type = None
    compiler = None
    if cc:
        try:
            compiler = subprocess.run([cc, "--version"], capture_output=True,
                                      text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            compiler = cc
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) // (1024 * 1024)} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "kernel": platform.release(), "os": platform.platform(),
            "compiler": compiler, "build_type": build_type,
            "python": subprocess.run([python_exe(), "--version"], capture_output=True,
                                     text=True).stdout.strip() + f" ({python_exe()})",
            "sqlite3": pkg_version("sqlite3") or pkg_version("libsqlite3-0"),
            "valgrind": pkg_version("valgrind")}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return None


def chart(out_png, rows, cols, raw, title):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not found: no chart (apt-get install gnuplot-nox)"
    data = os.path.join(raw, "chart.dat")
    low = 1.0
    with open(data, "w") as f:
        for r in rows:
            vals = []
            for c in cols:
                cell = r["cells"].get(c)
                ratio = cell.get("ratio") if cell else None
                vals.append(f"{ratio:.4f}" if ratio else "-")
                if ratio:
                    low = min(low, ratio)
            label = r["label"].replace('"', "'")
            f.write(f'"{label}" ' + " ".join(vals) + "\n")
    bottom = 0.5
    while bottom > low / 1.5:
        bottom /= 2
    colours = {"mpool": "#d62728", "mpool-api": "#ff9896", "glibc": "#1f77b4",
               "mimalloc": "#2ca02c", "jemalloc": "#9467bd", "tcmalloc": "#8c564b"}
    plots = []
    for i, c in enumerate(cols):
        colour = colours.get(c, "#7f7f7f")
        xt = ":xtic(1)" if i == 0 else ""
        plots.append(f"'{data}' using {i + 2}{xt} title '{c}' lc rgb '{colour}'")
    script = f"""
set terminal pngcairo size {max(1800, 56 * len(rows))},800 font ',10'
set output '{out_png}'
set title '{title}'
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y 2
set yrange [{bottom}:*]
set ylabel 'median / best peer median (lower is better; log scale)'
set grid ytics
set key top left horizontal
set xtics rotate by -35 scale 0 font ',9'
set bmargin 9
set rmargin 14
set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#000000' dt 2
plot {", ".join(plots)}
"""
    path = os.path.join(raw, "chart.gp")
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run([gnuplot, path], capture_output=True, text=True)
    if r.returncode != 0:
        return f"gnuplot failed: {r.stderr.strip()[-300:]}"
    return None


# ---- Arenas (issue 13) ----------------------------------------------------------
# bench/arena.c (mpool_bench_arena): a parse-like phase (a tree of nodes with
# their names copied into strings and some attribute lists, walked, then the
# whole phase dropped at once) served by an mpool arena and by its peers:
# APR pools, talloc (a context per phase, and a talloc_pool reused by every
# phase) and each malloc (malloc each, free each at the end of the phase; the
# malloc columns preload the allocator as the main table does; "mpool malloc"
# is mpool's drop-in, shown but not a peer).  The figure is the thread's CPU
# time per allocation (the phase's release included): on a machine shared
# with other work the wall time also counts the time others held the core.

ARENA_PEERS = ["apr", "talloc", "talloc-pool"] + PEERS  # the best of these is ×1.00


def arena_columns(live):
    """column -> (implementation argument, preload or None), for the columns
    that can run: the arena libraries, then malloc under each live allocator."""
    cols = {"mpool arena": ("mpool", None), "apr": ("apr", None), "talloc": ("talloc", None),
            "talloc-pool": ("talloc-pool", None)}
    for name, a in live.items():
        if name == "mpool-api":
            continue
        cols["mpool malloc" if name == "mpool" else name] = ("malloc", a["preload"])
    return cols


def arena_section(p, build, live, launcher, raw, reps, timeout, only):
    """Runs the arena workloads (reps rounds, every column in turn); returns
    (rows, columns, notes) for the Markdown and the JSON."""
    binary = os.path.join(build, "bench", "mpool_bench_arena")
    if not os.access(binary, os.X_OK):
        return [], [], [f"arenas skipped: {binary} not built (make bench builds it)"]
    works = [(f"arena-phase-{nodes}", f"parse phase, {nodes} nodes", nodes, phases)
             for nodes, phases in p["arena_phase"]]
    if only:
        works = [w for w in works if any(re.search(o, w[0]) for o in only)]
    cols, notes, errors = arena_columns(live), [], {}
    runs = {w[0]: {c: [] for c in cols} for w in works}
    for rep in range(reps):
        for wid, label, nodes, phases in works:
            for col, (impl, preload) in cols.items():
                if (wid, col) in errors:
                    continue
                w = Workload(wid, label, ["phase", impl, phases, nodes])
                try:
                    runs[wid][col].append(run_one(w, col.replace(" ", "-"),
                                                  {"bin": binary, "preload": preload},
                                                  launcher, raw, timeout))
                except (RuntimeError, OSError, ValueError) as e:
                    errors[(wid, col)] = str(e)
                    if "exit 2" not in str(e):
                        print(f"bench: FAILED {e}", file=sys.stderr, flush=True)
        print(f"  arenas: repetition {rep + 1}/{reps} done", flush=True)
    rows = []
    for wid, label, nodes, phases in works:
        cells = {}
        for col in cols:
            vals = [r["ns_per_op"] for r in runs[wid][col]]
            if vals:
                cells[col] = summarize(vals)
                cells[col]["runs"] = vals
                cells[col]["wall_ns_per_op"] = statistics.median(
                    r["wall_ns_per_op"] for r in runs[wid][col])
        best = add_ratios(cells, ARENA_PEERS)
        rows.append({"id": wid, "label": label, "unit": "ns/alloc", "best_peer": best,
                     "cells": cells, "phases": phases, "nodes": nodes})
    shown = [c for c in cols if any(c in r["cells"] for r in rows)]
    for (wid, col), e in sorted(errors.items()):
        if "exit 2" in e:  # built without that library
            notes.append(f"arenas: {col} skipped: {e.split(': ', 2)[-1]}")
        else:
            notes.append(f"arenas: {col} FAILED on {wid}: {e}")
    return rows, shown, notes


def arena_markdown(rows, cols):
    md = ["## Arenas: parse-like phases (CPU ns per allocation)\n"]
    md.append(md_table(["workload"] + cols,
                       [[f"{r['label']} ×{r['phases']}"] + [cell_text(r["cells"].get(c)) for c in cols]
                        for r in rows]) + "\n")
    md.append("bench/arena.c: each phase builds a tree of nodes (48 B each, a 3-24 B name string "
              "each, a 1-4 pointer attribute list every fourth node: about 2.25 allocations per "
              "node), walks it and drops it at once (mpool_arena_reset, apr_pool_clear, "
              "talloc_free of the phase's context, talloc_free_children of a 1 MiB talloc_pool, "
              "or free of every block for the malloc columns). Ratios to the best of "
              f"{', '.join(ARENA_PEERS)}; the figure is the thread's CPU time per allocation, "
              "the workload's own work included.\n")
    return md


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"),
                    help="build tree with bench/mpool_bench, bench/mpool_bench_api, "
                         "libmpool-malloc.so (default: build-bench)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--reps", type=int, help="repetitions (default: the profile's)")
    ap.add_argument("--allocators", default=",".join(ORDER),
                    help="comma-separated subset of " + ",".join(ORDER))
    ap.add_argument("--only", action="append", help="regex: run only matching workloads")
    ap.add_argument("--no-fastpath", action="store_true")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per run")
    ap.add_argument("--no-fixed", action="store_true", help="skip the fixed-size pool section")
    args = ap.parse_args()

    p = PROFILES[args.profile]
    reps = args.reps or p["reps"]
    build = os.path.abspath(args.build)
    out = os.path.abspath(args.out)
    raw = os.path.join(out, "raw")
    os.makedirs(raw, exist_ok=True)
    for f in os.listdir(raw):
        if f.endswith(".log"):
            os.remove(os.path.join(raw, f))

    wanted = [a.strip() for a in args.allocators.split(",") if a.strip()]
    unknown = [a for a in wanted if a not in ORDER]
    if unknown:
        ap.error(f"unknown allocators: {', '.join(unknown)}")
    allocs = allocators(build, wanted)
    notes = []
    for name, a in allocs.items():
        if "skip" in a:
            notes.append(f"{name} skipped: {a['skip']}")
            print(f"bench: {name} skipped: {a['skip']}", file=sys.stderr)
    live = {n: a for n, a in allocs.items() if "skip" not in a}
    if not live:
        print("bench: no allocator to run (build first: make bench)", file=sys.stderr)
        return 1
    cols = list(live)
    launcher = os.path.join(build, "bench", "mpool_bench")
    if not os.access(launcher, os.X_OK):
        print(f"bench: {launcher} not built (make bench builds it)", file=sys.stderr)
        return 1

    ws = []
    for w in workloads(p, raw, args.only, build):
        if w.skip:
            notes.append(f"{w.id} skipped: {w.skip}")
            print(f"bench: {w.id} skipped: {w.skip}", file=sys.stderr)
        else:
            ws.append(w)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = loadavg()
    t_start = time.time()
    print(f"bench: profile {args.profile}, {reps} repetitions, {len(ws)} workloads, "
          f"allocators: {', '.join(cols)}", flush=True)

    runs = {w.id: {n: [] for n in cols} for w in ws}
    errors = {}
    for rep in range(reps):
        t_rep = time.time()
        for w in ws:
            for name in cols:
                a = live[name]
                if w.real_program() and name == "mpool-api":
                    continue  # a real program reaches mpool only through the drop-in
                if (w.id, name) in errors or (w.reps and rep >= w.reps):
                    continue
                try:
                    runs[w.id][name].append(run_one(w, name, a, launcher, raw, args.timeout))
                except (RuntimeError, OSError, ValueError) as e:
                    errors[(w.id, name)] = str(e)
                    print(f"bench: FAILED {e}", file=sys.stderr, flush=True)
        print(f"  repetition {rep + 1}/{reps} done ({time.time() - t_rep:.0f} s)", flush=True)

    for w in ws:
        if w.cleanup:
            w.cleanup()

    arena_rows, arena_cols, arena_notes = arena_section(p, build, live, launcher, raw, reps,
                                                        args.timeout, args.only)
    notes.extend(arena_notes)

    fast, fast_note = (None, "skipped (--no-fastpath)")
    if not args.no_fastpath:
        try:
            fast, fast_note = fastpath(live, build, p)
        except RuntimeError as e:
            fast, fast_note = None, str(e)
            print(f"bench: fast path: {e}", file=sys.stderr)
    if fast_note:
        notes.append(f"fast path: {fast_note}")

    fixed_md, fixed_json = [], None
    if not args.no_fixed and (not args.only or any(re.search(o, "fixed") for o in args.only)):
        fixed_md, fixed_json, fixed_notes = fixed_section(
            build, allocs, args.profile, reps, raw, launcher, args.timeout, not args.no_fastpath)
        notes.extend(fixed_notes)

    # Rows: one per figure; cells per allocator.
    rows, peak_rows = [], []
    for w in ws:
        for rid, label, unit, get in w.rows:
            cells = {}
            for name in cols:
                if (w.id, name) in errors:
                    cells[name] = {"error": errors[(w.id, name)]}
                    continue
                vals = [get(r) for r in runs[w.id][name]]
                if vals:
                    cells[name] = summarize(vals)
                    cells[name]["runs"] = vals
            best = add_ratios({k: v for k, v in cells.items() if "error" not in v})
            rows.append({"id": rid, "label": label, "unit": unit, "best_peer": best,
                         "cells": cells})
        cells = {}
        for name in cols:
            vals = [r["child_maxrss_kb"] / 1024.0 for r in runs[w.id][name]]
            if vals and (w.id, name) not in errors:
                cells[name] = summarize(vals)
        best = add_ratios(cells)
        peak_rows.append({"id": w.id, "label": w.label, "unit": "MiB", "best_peer": best,
                          "cells": cells})

    scaling = {}
    t_ids = [f"threads-{t}" for t in p["threads"] if f"threads-{t}" in runs]
    by_id = {r["id"]: r for r in rows}
    if "threads-1" in by_id:
        for name in cols:
            base = by_id["threads-1"]["cells"].get(name, {}).get("median")
            if base:
                scaling[name] = {}
                for tid in t_ids:
                    m = by_id[tid]["cells"].get(name, {}).get("median")
                    if m:
                        scaling[name][int(tid.split("-")[1])] = base / m

    frag_trim = {}
    for name in cols:
        if runs.get("frag", {}).get(name):
            frag_trim[name] = runs["frag"][name][0].get("trim")

    redis_heap = {}
    for name in cols:
        heaps = sorted({r.get("heap") for r in runs.get("redis", {}).get(name, [])} - {None})
        if heaps:
            redis_heap[name] = " / ".join(heaps)
    totals = summary(rows, peak_rows, cols)

    finished = datetime.datetime.now(datetime.timezone.utc)
    duration = time.time() - t_start
    machine = machine_info(build)
    machine["load_average_start"] = load_start
    machine["load_average_end"] = loadavg()
    for w in ws:
        if w.note:
            notes.append(f"{w.id}: {w.note}")
    if frag_trim:
        notes.append("frag trims with: " + "; ".join(f"{k}: {v}" for k, v in frag_trim.items()))
    if redis_heap:
        notes.append("redis heap served by (INFO memory: jemalloc's allocator_allocated against "
                     "used_memory): " + "; ".join(f"{k}: {v}" for k, v in redis_heap.items()))

    result = {
        "schema": 1, "profile": args.profile, "repetitions": reps,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "machine": machine,
        "allocators": {n: {k: v for k, v in a.items() if k != "bin"} for n, a in allocs.items()},
        "peers": [p_ for p_ in PEERS if p_ in cols],
        "rows": rows, "peak_rss": peak_rows, "thread_scaling": scaling, "summary": totals,
        "fastpath_instructions_per_pair": ({str(k): v for k, v in fast.items()} if fast else None),
        "fixed_pools": fixed_json,
        "arenas": {"columns": arena_cols, "peers": ARENA_PEERS, "rows": arena_rows},
        "notes": notes,
    }

    # ---- Markdown -------------------------------------------------------------
    md = []
    md.append(f"# mpool benchmark: profile `{args.profile}`\n")
    md.append(f"{started:%Y-%m-%d %H:%M} UTC, {reps} repetitions interleaved "
              f"(A B C … A B C …), {duration:.0f} s in all. "
              f"Cells: median [min–max] ×ratio to the best peer "
              f"({', '.join(result['peers'])}) of the same row; lower is better everywhere, "
              f"×1.00 is the best peer, below 1.00 beats every peer.\n")
    md.append("**Machine:** " + "; ".join(f"{k}: {v}" for k, v in machine.items() if v) + "\n")
    md.append("**Allocators:** " + "; ".join(
        f"{n} {a.get('version') or ''}".strip() + (f" ({a['preload']})" if a.get("preload") else
                                                   " (API)" if n == "mpool-api" else
                                                   " (no preload)" if n == "glibc" else "")
        for n, a in allocs.items() if "skip" not in a) + "\n")
    header = ["workload", "unit"] + cols
    md.append("## Summary: geometric mean of the ratios to the best peer\n")
    md.append(md_table(
        ["allocator", "time rows", "peak RSS rows"],
        [[n, geomean_text(v["time_geomean_ratio"], v["time_rows"]),
          geomean_text(v["peak_rss_geomean_ratio"], v["peak_rss_rows"])]
         for n, v in totals.items()]) + "\n")
    md.append(f"Each allocator's median / best peer median, multiplied over the rows it ran "
              f"and rooted: time rows are those in {', '.join(TIME_UNITS)} of the next table, "
              f"peak RSS rows the table of that name. 1.00 would be the best peer on every "
              f"row, so a peer is never below it; mpool-api has no real-program rows.\n")
    md.append("## Time (and memory of the fragmentation, exchange, burst, small-program and "
              "redis runs)\n")
    md.append(md_table(header, [[r["label"], r["unit"]] + [cell_text(r["cells"].get(c))
                                                           for c in cols] for r in rows]) + "\n")
    md.append("ns/op: wall time of the measured loop per operation (pair: one malloc+free; "
              "batch, churn, threads, larson: one free + one malloc; prodcons: one block made "
              "and freed across threads; realloc: one realloc (+25%: writing the new tail); "
              "frag: one block operation; batches freed by others: one block made by a "
              "producer thread and freed, in a whole batch, by a consumer; exchange: one block "
              "of 16 B–64 KiB made and touched, kept or passed to the next thread, freed; "
              "bursts: one block of a burst made, written and freed). "
              "threads ×T and the other multi-thread rows: all threads' operations over the "
              "wall time (aggregate). python, sqlite: wall seconds of the whole process; "
              "small program: wall milliseconds of the whole process (start-up included) and "
              "its peak RSS in KiB. redis: ns/req = 1e9 / redis-benchmark's requests per second "
              "(client and server share the machine), peak RSS of the server. "
              "The \"peak RSS\" rows repeat the peak RSS table for the workloads where memory "
              "is the point.\n")
    if scaling:
        ts = sorted({t for s in scaling.values() for t in s})
        md.append("## Thread scaling (threads ×T throughput / threads ×1 throughput)\n")
        md.append(md_table(["allocator"] + [f"×{t}" for t in ts],
                           [[n] + [f"{scaling[n].get(t, 0):.2f}" for t in ts] for n in scaling])
                  + "\n")
        md.append(f"{machine['cores']} cores: the ideal is min(T, {machine['cores']}).\n")
    if fast:
        fcols = list(next(iter(fast.values())).keys())
        frows = []
        for size, row in fast.items():
            peers = [row[p_] for p_ in PEERS if p_ in row]
            best = min(peers) if peers else None
            frows.append([size_label(size)] + [
                f"{row[c]:.0f}" + (f" ×{row[c] / best:.2f}" if best else "") for c in fcols])
        md.append("## Fast path: instructions per malloc+free pair (callgrind)\n")
        md.append(md_table(["size"] + fcols, frows) + "\n")
        n1, n2 = p["fastpath_n"]
        md.append(f"`valgrind --tool=callgrind` on the `pair` loop at N = {n1} and {n2}; "
                  f"(difference of totals) / {n2 - n1}. Exact and repeatable, unlike the "
                  f"times. The last column is bench/pair.c, a pool without locking.\n")
    if arena_rows:
        md.extend(arena_markdown(arena_rows, arena_cols))
    md.append("## Peak RSS per workload (MiB, ru_maxrss of the process)\n")
    md.append(md_table(header, [[r["label"], r["unit"]] + [cell_text(r["cells"].get(c), False)
                                                           for c in cols] for r in peak_rows])
              + "\n")
    md.extend(fixed_md)
    if not args.no_chart:
        md.append("## Chart\n\n![ratio to the best peer per workload](latest.png)\n")
    if notes or errors:
        md.append("## Notes\n")
        md.extend(f"- {n}" for n in notes)
        md.extend(f"- FAILED: {e}" for e in errors.values())
        md.append("")
    text = "\n".join(md)

    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")
    chart_note = None
    if not args.no_chart:
        chart_rows = [r for r in rows if r["id"] != "frag-peak"]
        for size, row in (fast or {}).items():
            peers = [row[p_] for p_ in PEERS if p_ in row]
            if peers:
                chart_rows.append({"label": f"fast path {size_label(size)} (instructions)",
                                   "cells": {c: {"ratio": row[c] / min(peers)}
                                             for c in cols if c in row}})
        chart_note = chart(os.path.join(out, "latest.png"), chart_rows, cols, raw,
                           f"mpool vs peers, profile {args.profile}, {started:%Y-%m-%d}: "
                           f"median / best peer median")
        if chart_note:
            print(f"bench: {chart_note}", file=sys.stderr)
            with open(os.path.join(out, "latest.md"), "a") as f:
                f.write(f"- chart: {chart_note}\n")
    print()
    print(text)
    print(f"bench: wrote {os.path.relpath(out)}/latest.md, latest.json"
          + ("" if args.no_chart or chart_note else ", latest.png")
          + f" in {duration:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
