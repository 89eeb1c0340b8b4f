#!/usr/bin/env python3
"""Runs the misuse corpus (tests/misuse/) under the malloc replacement and
checks that each case is stopped with its report.

    run.py --lib libmpool-malloc.so --bin DIR [--mode default|debug] [-v]

Each case is a program of this directory, its arguments (the block size: 8,
4096 and 262144 for a small, a medium and a large block) and what must stop
it: the regular expression of the report line on stderr and the signal that
ends the process (SIGABRT: the drop-in's default policy for misuse aborts
after the line; SIGSEGV: the access faults).  A program that reaches its
end prints "survived"; that is no failure when the report and the signal
come after it (a double free that only the final check at exit finds).
"""
import argparse
import os
import re
import signal
import subprocess
import sys

SIZES = (8, 4096, 262144)
ABRT, SEGV = signal.SIGABRT, signal.SIGSEGV

# (program, extra arguments, sizes, report regex or None, signal)
DEFAULT_CASES = [
    ("double_free", [], SIZES, r"double free detected|invalid pointer", ABRT),
    ("double_free_between", [], SIZES, r"double free detected|invalid pointer", ABRT),
    ("double_free_thread", [], SIZES, r"double free detected|invalid pointer", ABRT),
    ("invalid_free", [], SIZES, r"free\(0x[0-9a-f]+\): invalid pointer", ABRT),
    ("interior_free", [], SIZES, r"free\(0x[0-9a-f]+\): invalid pointer", ABRT),
    ("free_neighbour", [], SIZES, r"double free detected|invalid pointer", ABRT),
    ("free_sized_mismatch", [], SIZES, r"free_sized\(0x[0-9a-f]+, size=\d+\): size or alignment does not match", ABRT),
    ("free_aligned_sized_mismatch", [], SIZES,
     r"free_aligned_sized\(0x[0-9a-f]+, size=\d+, alignment=16\): size or alignment does not match", ABRT),
    ("sized_delete", [], SIZES, r"operator delete\(0x[0-9a-f]+, size=\d+\): size or alignment does not match", ABRT),
    # delete of an array with a cookie: the pointer is 8 bytes into the block
    ("delete_cookie", [], SIZES, r"operator delete\(0x[0-9a-f]+\): invalid pointer", ABRT),
    ("usable_size", ["freed"], SIZES, r"malloc_usable_size\(0x[0-9a-f]+\): invalid pointer", ABRT),
    ("usable_size", ["interior"], SIZES, r"malloc_usable_size\(0x[0-9a-f]+\): invalid pointer", ABRT),
    ("usable_size", ["unaligned"], SIZES, r"malloc_usable_size\(0x[0-9a-f]+\): invalid pointer", ABRT),
    ("usable_size", ["foreign"], SIZES, r"malloc_usable_size\(0x[0-9a-f]+\): invalid pointer", ABRT),
    ("zero_access", ["read"], (0,), None, SEGV),
    ("zero_access", ["write"], (0,), None, SEGV),
    ("link_overwrite", [], (8, 64, 1024), r"free list corrupted", ABRT),
]

# Debug mode (MPOOL_ENABLE_DEBUG=1): the same cases, each reported by the
# debug layer's own line, and what only canaries, fills and the quarantine
# catch.
DEBUG_ONLY = [("overflow", [str(k), how], SIZES, r"heap overflow: block 0x[0-9a-f]+ of \d+ bytes", ABRT)
              for k in (1, 8, 32) for how in ("direct", "memcpy")]
DEBUG_ONLY += [("underflow", [str(k), how], SIZES, r"heap underflow: block 0x[0-9a-f]+ of \d+ bytes", ABRT)
               for k in (1, 8, 32) for how in ("direct", "memcpy")]
# The form of the release (debug.h records the allocation's), and an
# alignment that divides the address: the default mode does not see these.
RELEASED = r"mismatched release: block 0x[0-9a-f]+ of \d+ bytes, allocated with %s, to be released with %s; " \
           r"allocated at \S*misuse_delete_mismatch\S*; released at \S*misuse_delete_mismatch"
DEBUG_ONLY += [
    ("delete_mismatch", ["delete_of_new_array"], SIZES,
     r"operator delete\(0x[0-9a-f]+\): " + RELEASED % (r"operator new\[\]", r"operator delete\[\]"), ABRT),
    ("delete_mismatch", ["delete_array_of_new"], SIZES,
     r"operator delete\[\]\(0x[0-9a-f]+\): " + RELEASED % ("operator new", "operator delete"), ABRT),
    ("delete_mismatch", ["free_of_new"], SIZES,
     r"mpool_free\(0x[0-9a-f]+\): " + RELEASED % ("operator new", "operator delete"), ABRT),
    ("delete_mismatch", ["delete_of_malloc"], SIZES,
     r"operator delete\(0x[0-9a-f]+\): " + RELEASED % ("malloc", "free"), ABRT),
    ("aligned_delete", ["smaller"], SIZES,
     r"operator delete\(0x[0-9a-f]+\): alignment mismatch: block 0x[0-9a-f]+ of \d+ bytes, "
     r"allocated with alignment 4096, released with alignment 64", ABRT),
    ("aligned_delete", ["unaligned"], SIZES,
     r"operator delete\(0x[0-9a-f]+\): alignment mismatch: block 0x[0-9a-f]+ of \d+ bytes, "
     r"allocated with alignment 64, released with alignment 0", ABRT),
    ("free_aligned_sized_mismatch", [], SIZES,
     r"free_aligned_sized\(0x[0-9a-f]+\): alignment mismatch: block 0x[0-9a-f]+ of \d+ bytes, "
     r"allocated with alignment 8192, released with alignment 16", ABRT),
    ("uaf_write", ["end"], (8, 4096), r"write after free: block 0x[0-9a-f]+", ABRT),
    ("uaf_write", ["reuse"], (8, 4096), r"write after free: block 0x[0-9a-f]+", ABRT),
    ("uaf_write", ["end"], (262144,), None, SEGV),   # its pages are protected in the quarantine
    ("uaf_write", ["reuse"], (262144,), None, SEGV),
    ("uaf_read", [], (262144,), None, SEGV),
]

# The default mode's cases in debug mode (malloc(0) faults as in the default
# mode: its block is a slot of zero.h), but the overflow into a free
# neighbour's link (blocks are not adjacent there) and the alignment
# mismatch, which DEBUG_ONLY checks for its own line.
DEBUG_SEES = r"double free|invalid free|invalid pointer|size mismatch|heap overflow"
DEBUG_DEFAULT = [(prog, extra, sizes, DEBUG_SEES if regex else None, sig)
                 for prog, extra, sizes, regex, sig in DEFAULT_CASES
                 if prog not in ("free_aligned_sized_mismatch", "link_overwrite")]

CASES = {"default": DEFAULT_CASES, "debug": DEBUG_DEFAULT + DEBUG_ONLY}


def run_case(args, prog, extra, size, regex, sig):
    exe = os.path.join(args.bin, "misuse_" + prog)
    env = dict(os.environ, LD_PRELOAD=os.path.abspath(args.lib))
    env.pop("MPOOL_ON_ERROR", None)
    if args.mode == "debug":
        env["MPOOL_ENABLE_DEBUG"] = "1"
    cmd = [exe, str(size)] + extra
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    name = " ".join([prog, str(size)] + extra)
    problems = []
    if p.returncode != -sig:
        problems.append("ended with %s, expected signal %s" % (p.returncode, sig.name))
    if regex and not re.search(regex, p.stderr):
        problems.append("no report matching /%s/" % regex)
    return name, problems, p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mode", default="default", choices=sorted(CASES))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    failed = 0
    total = 0
    for prog, extra, sizes, regex, sig in CASES[args.mode]:
        for size in sizes:
            total += 1
            name, problems, p = run_case(args, prog, extra, size, regex, sig)
            line = (p.stderr.strip().splitlines() or [""])[0]
            if problems:
                failed += 1
                print("FAIL %-40s %s\n     stderr: %s" % (name, "; ".join(problems), p.stderr.strip()[:400]))
            elif args.verbose:
                print("ok   %-40s %s" % (name, line))
    print("%s mode: %d of %d misuse cases stopped with their report" % (args.mode, total - failed, total))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
