"""dropin/stats.py - the statistics of libmpool-malloc.so, from outside.

Runs real programs (Python, and the helper tests/dropin/api.c) with the
replacement preloaded and checks:

- MPOOL_SHOW_STATS=1: the text report at exit on stderr (its title, the
  class table header, the health line), or in MPOOL_LOG_FILE;
- the health thresholds and MPOOL_STATS_* reach the default pool from the
  environment and from the MPOOL_CONFIG file (verbose output, verdicts);
- MPOOL_STATS_INTERVAL + MPOOL_STATS_FILE on a Python workload of about
  1.5 s: every line parses with json, has the documented keys, timestamps
  strictly increase, at least 3 lines, the last one written at exit;
- the thread allocates nothing: while Python sleeps, consecutive lines show
  the same allocation and free counts;
- fork: parent and child each write whole lines with their own pid;
- without thread safety, or without a file, a warning and no thread;
- tools/mpool-plot draws the file into a non-empty PNG (gnuplot is
  installed through scripts/install-deps.sh when missing; the check is
  skipped with a message only if that fails).

    python3 stats.py --lib libmpool-malloc.so --api dropin_api
                     --source SOURCE_DIR --work WORK_DIR
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

FAILURES = []


def check(cond, what, detail=""):
    if cond:
        print(f"ok    {what}")
    else:
        print(f"FAIL  {what}")
        if detail:
            print(textwrap.indent(str(detail)[-4000:], "      "))
        FAILURES.append(what)
    return cond


def python_binary():
    """An ELF Python (not a wrapper script, which would load the replacement too)."""
    for candidate in ("/usr/bin/python3", os.path.realpath(sys.executable)):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            with open(candidate, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    return candidate
    sys.exit("stats.py: no ELF python3 found")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPOOL_") and k != "LD_PRELOAD"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(argv, env, timeout=60):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def preload(lib, **extra):
    return clean_env(LD_PRELOAD=lib, **extra)


# A workload of about `seconds`: dictionaries, strings and lists of many
# sizes, a few kept alive at a time, so memory held and classes change.
WORKLOAD = textwrap.dedent("""
    import sys, time
    seconds = float(sys.argv[1])
    start = time.monotonic()
    keep, round_ = [], 0
    while time.monotonic() - start < seconds:
        round_ += 1
        d = {i: str(i) * (1 + (i + round_) % 40) for i in range(5000 * (1 + round_ % 4))}
        keep.append(d)
        keep.append([bytes(64 * (1 + round_ % 16)) for _ in range(300)])
        if len(keep) > 8:
            del keep[:2]
    print("done", round_)
""")

FORKING = textwrap.dedent("""
    import os, sys, time
    pid = os.fork()
    start = time.monotonic()
    data = []
    while time.monotonic() - start < 0.8:
        data.append("x" * 100)
        if len(data) > 10000:
            data.clear()
    if pid == 0:
        os._exit(0)  # no exit handlers: the child's lines come from its thread only
    os.waitpid(pid, 0)
    print("done")
""")

REQUIRED_KEYS = ("total_bytes", "used_bytes", "live_blocks", "allocations", "frees", "fragmentation", "classes",
                 "size_histogram", "health")


def read_lines(path):
    """The lines of a statistics file: (parsed objects, problems)."""
    lines, problems = [], []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        problems.append("the file does not end with a newline")
    for n, raw in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(raw)
        except ValueError as e:
            problems.append(f"line {n} does not parse ({e}): {raw[:200]}")
            continue
        if not isinstance(obj, dict) or not {"timestamp", "pid", "report"} <= obj.keys():
            problems.append(f"line {n} lacks timestamp/pid/report: {raw[:200]}")
            continue
        missing = [k for k in REQUIRED_KEYS if k not in obj["report"]]
        if missing:
            problems.append(f"line {n}: report lacks {missing}")
        lines.append(obj)
    return lines, problems


def increasing(values):
    return all(b > a for a, b in zip(values, values[1:]))


def test_show_stats(args, py, work):
    r = run([py, "-c", "import json; print(len(json.dumps(list(range(10000)))))"], preload(args.lib, MPOOL_SHOW_STATS=1))
    check(r.returncode == 0 and r.stdout.strip() == "58890", "show_stats: python runs", r.stderr)
    err = r.stderr
    check("mpool report: default pool" in err, "show_stats: the report's title on stderr", err)
    check("block size" in err and "in use / capacity" in err, "show_stats: the class table header", err)
    health = [l for l in err.splitlines() if l.startswith("health")]
    check(len(health) == 1 and any(w in health[0] for w in ("HEALTHY", "WARNING", "CRITICAL")),
          "show_stats: one health line with a verdict", err)
    check(err.count("mpool report:") == 1, "show_stats: one report per process", err)

    log = os.path.join(work, "show_stats.log")
    r = run([py, "-c", "print('hi')"], preload(args.lib, MPOOL_SHOW_STATS=1, MPOOL_LOG_FILE=log))
    with open(log, encoding="utf-8") as f:
        logged = f.read()
    check(r.returncode == 0 and r.stderr == "" and "in use / capacity" in logged,
          "show_stats: with MPOOL_LOG_FILE the report goes to the file", r.stderr + logged)

    r = run([py, "-c", "print('hi')"], preload(args.lib))
    check(r.returncode == 0 and r.stderr == "", "show_stats: off by default", r.stderr)

    # Timing samples through the drop-in's inline paths (diverted per sample).
    r = run([py, "-c", "x = [str(i) for i in range(200000)]; print(len(x))"],
            preload(args.lib, MPOOL_SHOW_STATS=1, MPOOL_TIMING_SAMPLE_RATE="64"))
    m = re.search(r"^  timing +(\d+) samples: allocation ([\d.]+ [nuµm]?s) average", r.stderr, re.M)
    calls = re.search(r"^  successful +(\d+) allocations, (\d+) frees", r.stderr, re.M)
    check(r.returncode == 0 and m is not None and calls is not None, "timing: the report has a timing line", r.stderr)
    if m and calls:
        expected = (int(calls.group(1)) + int(calls.group(2))) / 64
        check(0.25 * expected <= int(m.group(1)) <= 4 * expected,
              f"timing: about one call in 64 timed ({m.group(1)} samples, {expected:.0f} expected)", r.stderr)


def test_options(args, py, work):
    r = run([args.api, "hello"], preload(args.lib, MPOOL_VERBOSE=1, MPOOL_TIMING_SAMPLE_RATE="1K",
                                         MPOOL_HEALTH_WARNING_USAGE="0.5", MPOOL_HEALTH_CRITICAL_ERROR_RATE="0.25",
                                         MPOOL_STATS_INTERVAL="0.25"))
    shown = {}
    for line in r.stderr.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1].startswith("MPOOL_") and parts[2] == "=":
            shown[parts[1]] = parts[3]
    want = {"MPOOL_TIMING_SAMPLE_RATE": "1024", "MPOOL_HEALTH_WARNING_USAGE": "0.500",
            "MPOOL_HEALTH_CRITICAL_USAGE": "0.950", "MPOOL_HEALTH_WARNING_FRAGMENTATION": "0.500",
            "MPOOL_HEALTH_WARNING_ERROR_RATE": "0.010", "MPOOL_HEALTH_CRITICAL_ERROR_RATE": "0.250",
            "MPOOL_STATS_INTERVAL": "0.250", "MPOOL_STATS_FILE": "(none)"}
    check(r.returncode == 0 and all(shown.get(k) == v for k, v in want.items()),
          "options: MPOOL_VERBOSE shows the statistics options from the environment",
          f"want {want}\ngot {shown}\n{r.stderr}")

    for bad in ("MPOOL_HEALTH_WARNING_USAGE=1.5", "MPOOL_STATS_INTERVAL=0.001", "MPOOL_STATS_INTERVAL=soon",
                "MPOOL_TIMING_SAMPLE_RATE=-1", "MPOOL_STATS_FILE=/nonexistent/dir/stats.jsonl"):
        name, value = bad.split("=", 1)
        r = run([args.api, "hello"], preload(args.lib, **{name: value}))
        lines = r.stderr.splitlines()
        check(r.returncode == 0 and len(lines) == 1 and name in lines[0],
              f"options: {bad} gives one warning naming {name}", r.stderr)

    # Thresholds reach the verdict: at exit Python still holds a few hundred
    # KiB in live blocks, more than 0.2% of a 64 MiB cap.
    r = run([py, "-c", "x = [str(i) for i in range(100000)]"],
            preload(args.lib, MPOOL_SHOW_STATS=1, MPOOL_MAX_SIZE="64M", MPOOL_HEALTH_WARNING_USAGE="0.001"))
    health = [l for l in r.stderr.splitlines() if l.startswith("health")]
    check(r.returncode == 0 and len(health) == 1 and "WARNING" in health[0] and "max_size" in health[0],
          "options: MPOOL_HEALTH_WARNING_USAGE decides the verdict", r.stderr)
    r = run([py, "-c", "x = [str(i) for i in range(100000)]"],
            preload(args.lib, MPOOL_SHOW_STATS=1, MPOOL_MAX_SIZE="64M", MPOOL_HEALTH_WARNING_USAGE="0.001",
                    MPOOL_HEALTH_CRITICAL_USAGE="0.002"))
    health = [l for l in r.stderr.splitlines() if l.startswith("health")]
    check(r.returncode == 0 and len(health) == 1 and "CRITICAL" in health[0],
          "options: MPOOL_HEALTH_CRITICAL_USAGE decides the verdict", r.stderr)

    # The same options from the MPOOL_CONFIG file.
    path = os.path.join(work, "config.jsonl")
    conf = os.path.join(work, "mpool.conf")
    with open(conf, "w") as f:
        f.write(f"# statistics\nmax_size = 64M\nhealth_warning_usage = 0.001\n"
                f"stats_interval = 0.1\nstats_file = {path}\n")
    if os.path.exists(path):
        os.unlink(path)
    r = run([py, "-c", "import time; time.sleep(0.5)"], preload(args.lib, MPOOL_CONFIG=conf))
    lines, problems = read_lines(path)
    check(r.returncode == 0 and not problems and len(lines) >= 3
          and lines[-1]["report"]["health"]["status"] == "WARNING",
          "options: stats_interval, stats_file and a threshold from MPOOL_CONFIG",
          f"{r.stderr}\n{problems}\n{len(lines)} lines")


def test_periodic(args, py, work):
    path = os.path.join(work, "python.jsonl")
    if os.path.exists(path):
        os.unlink(path)
    r = run([py, "-c", WORKLOAD, "1.5"], preload(args.lib, MPOOL_STATS_INTERVAL="0.2", MPOOL_STATS_FILE=path))
    check(r.returncode == 0 and r.stdout.startswith("done"), "periodic: the workload runs", r.stderr)
    check(r.stderr == "", "periodic: nothing on stderr", r.stderr)
    lines, problems = read_lines(path)
    check(not problems, "periodic: every line parses as JSON with the documented keys", "\n".join(problems))
    check(len(lines) >= 3, f"periodic: at least 3 lines ({len(lines)})")
    check(len(lines) <= 1.5 / 0.2 + 3, f"periodic: about one line per interval ({len(lines)})")
    stamps = [l["timestamp"] for l in lines]
    check(increasing(stamps), "periodic: timestamps strictly increase", stamps)
    check(len({l["pid"] for l in lines}) == 1, "periodic: one pid")
    gaps = [b - a for a, b in zip(stamps, stamps[1:-1])]  # the last line comes at exit
    check(all(0.1 < g < 1.0 for g in gaps), "periodic: lines come about every 0.2 s", gaps)
    check(any(l["report"]["used_bytes"] > 1 << 20 for l in lines), "periodic: the workload shows in used_bytes")
    return path if lines else None


def test_idle_thread_allocates_nothing(args, py, work):
    path = os.path.join(work, "idle.jsonl")
    if os.path.exists(path):
        os.unlink(path)
    r = run([py, "-c", "import time; time.sleep(1.6)"],
            preload(args.lib, MPOOL_STATS_INTERVAL="0.2", MPOOL_STATS_FILE=path))
    lines, problems = read_lines(path)
    # Skip the first line (Python may still be starting) and the last (exit).
    quiet = [(l["report"]["allocations"], l["report"]["frees"], l["report"]["reallocs"]) for l in lines[1:-1]]
    check(r.returncode == 0 and not problems and len(quiet) >= 3 and len(set(quiet)) == 1,
          "idle: while the program sleeps the counts do not move (the thread allocates nothing)",
          f"{problems}\n{quiet}")


def test_fork(args, py, work):
    path = os.path.join(work, "fork.jsonl")
    if os.path.exists(path):
        os.unlink(path)
    r = run([py, "-c", FORKING], preload(args.lib, MPOOL_STATS_INTERVAL="0.1", MPOOL_STATS_FILE=path))
    lines, problems = read_lines(path)
    check(r.returncode == 0 and not problems, "fork: every line whole and parsed", f"{r.stderr}\n{problems}")
    pids = {}
    for l in lines:
        pids.setdefault(l["pid"], []).append(l["timestamp"])
    check(len(pids) == 2 and all(len(t) >= 3 for t in pids.values()),
          "fork: parent and child both write lines (the child restarts the thread)",
          {p: len(t) for p, t in pids.items()})
    check(all(increasing(t) for t in pids.values()), "fork: each process's timestamps increase")


def test_degraded(args, py, work):
    path = os.path.join(work, "unsafe.jsonl")
    if os.path.exists(path):
        os.unlink(path)
    r = run([args.api, "hello"], preload(args.lib, MPOOL_THREAD_SAFE=0, MPOOL_STATS_INTERVAL="0.05",
                                         MPOOL_STATS_FILE=path))
    lines, problems = read_lines(path)
    check(r.returncode == 0 and "MPOOL_THREAD_SAFE" in r.stderr and len(lines) == 1 and not problems,
          "degraded: without thread safety a warning and only the line at exit", f"{r.stderr}\n{problems}")

    r = run([args.api, "hello"], preload(args.lib, MPOOL_STATS_INTERVAL="0.05"))
    check(r.returncode == 0 and "MPOOL_STATS_FILE" in r.stderr and len(r.stderr.splitlines()) == 1,
          "degraded: MPOOL_STATS_INTERVAL without a file warns once", r.stderr)

    path = os.path.join(work, "exit_only.jsonl")
    if os.path.exists(path):
        os.unlink(path)
    r = run([args.api, "hello"], preload(args.lib, MPOOL_STATS_FILE=path))
    lines, problems = read_lines(path)
    check(r.returncode == 0 and r.stderr == "" and len(lines) == 1 and not problems,
          "degraded: MPOOL_STATS_FILE alone writes the line at exit", f"{r.stderr}\n{problems}")


def find_gnuplot(args):
    if shutil.which("gnuplot"):
        return True
    deps = os.path.join(args.source, "scripts", "install-deps.sh")
    print(f"note  gnuplot not found; running {deps}")
    subprocess.run([deps], check=False)
    return shutil.which("gnuplot") is not None


def test_plot(args, work, path):
    if path is None:
        check(False, "plot: no statistics file to draw")
        return
    if not find_gnuplot(args):
        print("SKIP  plot: gnuplot is not installed and scripts/install-deps.sh could not install it "
              "(apt-get install gnuplot-nox)")
        return
    png = os.path.join(work, "python.png")
    if os.path.exists(png):
        os.unlink(png)
    r = run([os.path.join(args.source, "tools", "mpool-plot"), path, png], clean_env())
    ok = r.returncode == 0 and os.path.isfile(png) and os.path.getsize(png) > 1000
    if ok:
        with open(png, "rb") as f:
            ok = f.read(8) == b"\x89PNG\r\n\x1a\n"
    check(ok, "plot: tools/mpool-plot draws a non-empty PNG", r.stdout + r.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="mpool-stats-")
    os.makedirs(work, exist_ok=True)
    py = python_binary()
    print(f"python: {py}; files in {work}")
    test_show_stats(args, py, work)
    test_options(args, py, work)
    path = test_periodic(args, py, work)
    test_idle_thread_allocates_nothing(args, py, work)
    test_fork(args, py, work)
    test_degraded(args, py, work)
    test_plot(args, work, path)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
