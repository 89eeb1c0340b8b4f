#!/usr/bin/env bash
# tests/programs/run.sh - a real program under the drop-in malloc, compared
# with the same program on the system allocator.
#
#   tests/programs/run.sh NAME LIBMPOOL_MALLOC [STRESS_BINARY]
#
#   NAME     python | sqlite | git | cc | stress
#            python  /usr/bin/python3 (PYTHONMALLOC=malloc, so every object goes
#                    through malloc) running workload.py: dicts, lists, strings,
#                    sets, sorting, cyclic garbage, a JSON round trip of ~25 MB
#            sqlite  sqlite3 CLI running workload.sql: 250k generated rows,
#                    indexes, aggregates, joins, window functions, VACUUM
#            git     a generated repository of ~300 files: commits with fixed
#                    identities and dates, a branch and a merge, a tag, renames,
#                    deletions, gc --aggressive, repack -adf, fsck --full,
#                    log --stat, log -p, blame, grep, archive
#            cc      gcc -O2 -c of a generated 38k-line C file of 2400 functions
#                    (gcc, cc1 and as all preloaded), then nm and objdump -d
#            stress  STRESS_BINARY (tests/programs/stress.c, not linked with
#                    mpool): threads, cross-thread frees, fork, short-lived threads
#
# The workload runs twice in fresh directories of the same relative layout:
# once plainly, once with LD_PRELOAD=LIBMPOOL_MALLOC, MPOOL_SHOW_STATS=1 and
# MPOOL_LOG_FILE (the reports and messages go there, not to stderr).
# The test passes when both runs exit 0, their stdout, stderr and result
# files (result/ of each run) are identical byte for byte, the log has no
# "mpool:" message line, and it has at least the expected number of reports
# at exit with "successful N allocations", N > 0 (every preloaded process
# writes one, so this proves the drop-in served it).
#
# The program under test is started through `prog` in the workload functions
# below; helpers that only generate input (awk) run without the preload.
#
# Environment: MPOOL_PROGRAMS_KEEP=1 keeps the work directory (printed);
# other MPOOL_* variables reach the preloaded run untouched (e.g.
# MPOOL_ON_ERROR=log to see every error message instead of the first abort).
# Exit: 0 pass, 1 fail, 2 bad usage.
set -euo pipefail

usage() { echo "usage: $0 python|sqlite|git|cc|stress LIBMPOOL_MALLOC [STRESS_BINARY]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
name=$1
lib=$2
here=$(cd "$(dirname "$0")" && pwd)
[[ -f $lib ]] || { echo "run.sh: no such library: $lib" >&2; exit 2; }
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")

# Same locale, time zone and umask for both runs.
export LC_ALL=C TZ=UTC
umask 022
unset LD_PRELOAD MPOOL_SHOW_STATS MPOOL_LOG_FILE

fail() { echo "run.sh: $name: FAIL: $*" >&2; exit 1; }
need() { # need COMMAND PACKAGE
    command -v "$1" > /dev/null 2>&1 || fail "$1 not found (Debian package $2; run scripts/install-deps.sh)"
}

# Started by the workloads for every process of the program under test.
prog() {
    if [[ $mode == preload ]]; then
        env LD_PRELOAD="$lib" MPOOL_SHOW_STATS=1 MPOOL_LOG_FILE="$work/preload/mpool.log" "$@"
    else
        env -u LD_PRELOAD -u MPOOL_SHOW_STATS -u MPOOL_LOG_FILE "$@"
    fi
}

# ---- workloads: run in an empty current directory; stdout is compared,
# ---- files written to ../result/ are compared.  setup_NAME sets min_reports,
# ---- the least number of preloaded processes expected to report at exit, and
# ---- may set min_allocations, the least sum of their allocation counts.

setup_python() {
    need /usr/bin/python3 python3
    min_reports=1
    min_allocations=1000000 # PYTHONMALLOC=malloc took effect
}
work_python() {
    # The Debian interpreter, not a shim earlier in PATH; no PYTHON* variable
    # of the caller.  PYTHONMALLOC=malloc sends small objects to malloc instead
    # of Python's own arenas.
    local v
    for v in $(compgen -e PYTHON); do unset "$v"; done
    PYTHONMALLOC=malloc PYTHONHASHSEED=0 prog /usr/bin/python3 -S -B "$here/workload.py"
}

setup_sqlite() { need sqlite3 sqlite3; min_reports=1; }
work_sqlite() {
    prog sqlite3 -batch test.db < "$here/workload.sql"
    # The database file must come out identical, page for page.
    cp test.db ../result/test.db
}

setup_git() { need git git; min_reports=40; }

# gen_git_files COMMIT: write the generated tree of commit COMMIT in the current
# directory.  File i of directory d changes in a commit when (i + commit) % 4 == 0;
# its content is a function of (d, i, version) with version = last change.
gen_git_files() {
    awk -v commit="$1" '
    BEGIN {
        srand(1)
        for (d = 0; d < 10; d++) {
            for (i = 0; i < 30; i++) {
                if (commit > 1 && (i + commit + d) % 4 != 0)
                    continue
                file = sprintf("dir%02d/file%03d.txt", d, i)
                lines = 80 + (d * 31 + i * 17) % 160
                for (j = 0; j < lines; j++) {
                    if (j % 13 == commit % 13 && commit > 1)
                        printf "%s line %d changed in commit %d: %s\n", file, j, commit, \
                            substr("the quick brown fox jumps over the lazy dog", 1 + (j + commit) % 20) > file
                    else
                        printf "%s line %d: %d %x lorem ipsum dolor sit amet %d\n", file, j, \
                            d * 1000 + i, (j * 2654435761) % 4294967296, j * j > file
                }
                close(file)
            }
        }
    }'
}

git_commit() { # git_commit N MESSAGE...
    local n=$1; shift
    GIT_AUTHOR_DATE="@$((1700000000 + n * 3600)) +0000" \
    GIT_COMMITTER_DATE="@$((1700000000 + n * 3600 + 60)) +0000" \
        prog git commit -q -m "$*"
}

work_git() {
    unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY \
          GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CEILING_DIRECTORIES
    export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$PWD
    export GIT_AUTHOR_NAME="Mpool Tester" GIT_AUTHOR_EMAIL="tester@mpool.invalid"
    export GIT_COMMITTER_NAME="Mpool Committer" GIT_COMMITTER_EMAIL="committer@mpool.invalid"
    export GIT_TERMINAL_PROMPT=0 GIT_PAGER=cat PAGER=cat
    prog git init -q -b main repo
    cd repo
    prog git config gc.auto 0
    prog git config gc.autoDetach false
    prog git config maintenance.auto false
    prog git config pack.threads 2
    local c
    for d in $(seq 0 9); do mkdir -p "$(printf 'dir%02d' "$d")"; done
    for c in 1 2 3 4 5 6; do
        gen_git_files "$c"
        case $c in
            3) prog git rm -q dir01/file005.txt dir02/file006.txt ;;
            5) prog git mv dir03/file007.txt dir03/renamed007.txt ;;
        esac
        prog git add -A
        git_commit "$c" "commit $c: generated changes"
    done
    GIT_COMMITTER_DATE="@1700050000 +0000" prog git tag -a v1 -m "release 1"
    # a branch with its own commits, merged back without fast-forward
    prog git checkout -q -b feature
    for c in 7 8; do
        gen_git_files "$c"
        prog git add -A
        git_commit "$c" "feature commit $c"
    done
    prog git checkout -q main
    for c in 9 10; do
        gen_git_files "$c"
        prog git add -A
        git_commit "$c" "main commit $c"
    done
    GIT_AUTHOR_DATE="@1700100000 +0000" GIT_COMMITTER_DATE="@1700100000 +0000" \
        prog git merge -q --no-ff -X theirs -m "merge feature" feature
    for c in 11 12 13 14; do
        gen_git_files "$c"
        prog git add -A
        git_commit "$c" "commit $c after the merge"
    done
    GIT_COMMITTER_DATE="@1700200000 +0000" prog git tag -a v2 -m "release 2"

    echo "== rev-list --all"
    prog git rev-list --all --topo-order
    echo "== gc"
    prog git gc --quiet --aggressive
    prog git repack -adf --quiet
    prog git count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
    echo "== fsck --full"
    prog git fsck --full --strict --no-dangling
    echo "== log --stat"
    prog git log --stat --format=fuller --all --topo-order
    echo "== log -p -M"
    prog git log -p -M --all --topo-order > ../log-p.txt
    wc -l < ../log-p.txt
    sha256sum < ../log-p.txt
    echo "== log --graph"
    prog git log --graph --oneline --all
    echo "== diff v1 v2"
    prog git diff --stat v1 v2
    prog git diff v1 v2 -- dir04 | prog git patch-id --stable
    echo "== blame"
    prog git blame -s dir05/file011.txt > ../blame.txt
    head -n 40 ../blame.txt
    echo "== grep"
    prog git grep -c "changed in commit 1[0-9]" v2 -- dir06 dir07
    echo "== archive"
    prog git archive --format=tar v2 | sha256sum
    echo "== show-ref"
    prog git show-ref --head
    prog git for-each-ref --format='%(refname) %(objectname) %(objecttype)'
}

setup_cc() {
    need gcc gcc; need nm binutils; need objdump binutils
    min_reports=5 # gcc, cc1, as, nm, objdump
}

# gen_c_file: ~40k lines: a 20000-entry initialised table of structs, 400
# functions with a 24-case switch each that call one another, 3000 small
# functions, and a dispatcher with a 400-case switch.
gen_c_file() {
    awk '
    BEGIN {
        nf = 400
        print "/* generated by tests/programs/run.sh */"
        print "#include <stddef.h>"
        print "#include <string.h>"
        print "struct entry { unsigned key; int value; const char *name; double weight; };"
        printf "static const struct entry table[] = {\n"
        for (i = 0; i < 20000; i++)
            printf "    {%uU, %d, \"name%d\", %d.%d},\n", (i * 2654435761) % 4294967296, \
                (i * 7919) % 100003 - 50000, i, i % 977, (i * 13) % 100
        print "};"
        print "const size_t table_size = sizeof table / sizeof table[0];"
        for (f = 0; f < nf; f++) {
            printf "int f%d(int x, int y);\n", f
        }
        for (f = 0; f < nf; f++) {
            printf "int f%d(int x, int y)\n{\n    int acc = %d;\n", f, f
            printf "    switch ((x ^ %d) & 31) {\n", f
            for (c = 0; c < 24; c++) {
                op = (f + c) % 5
                if (op == 0)      printf "    case %d: acc += x * %d - y; break;\n", c, c + f % 7
                else if (op == 1) printf "    case %d: acc ^= (y << %d) | %d; break;\n", c, c % 13, f
                else if (op == 2) printf "    case %d: acc -= table[(unsigned)(x + %d) %% table_size].value; break;\n", c, c
                else if (op == 3) printf "    case %d: acc += (int)strlen(table[(unsigned)y %% table_size].name) * %d; /* fall through */\n", c, c
                else              printf "    case %d: acc = acc * 31 + %d; break;\n", c, f * c
            }
            print "    default: acc += x + y; break;\n    }"
            if (f > 0)
                printf "    if (y > 0 && (x & 7) == %d)\n        acc += f%d(x >> 1, y - 1);\n", f % 8, (f * 7) % f
            printf "    for (int i = 0; i < (x & 15); i++)\n        acc += (acc >> 3) ^ i * %d;\n", f % 11 + 1
            print "    return acc;\n}"
        }
        for (g = 0; g < 2000; g++) {
            printf "int g%d(int x);\n", g
            printf "int g%d(int x) { return x * %d + table[%d].value - (int)table[%d].weight; }\n", \
                g, g % 97 + 1, (g * 7) % 20000, (g * 11) % 20000
        }
        print "int dispatch(int which, int x, int y);"
        print "int dispatch(int which, int x, int y)\n{\n    switch (which) {"
        for (f = 0; f < nf; f++)
            printf "    case %d: return f%d(x, y);\n", f, f
        print "    default: return -1;\n    }\n}"
    }'
}

work_cc() {
    gen_c_file > big.c
    prog gcc -std=c11 -O2 -w -c big.c -o big.o
    echo "== nm"
    prog nm big.o > nm.txt
    wc -l < nm.txt
    sha256sum < nm.txt
    echo "== objdump -d"
    prog objdump -d big.o > dis.txt
    wc -l < dis.txt
    sha256sum < dis.txt
    cp big.o ../result/big.o
}

setup_stress() {
    stress_bin=${3:-}
    [[ -n $stress_bin && -x $stress_bin ]] || fail "stress needs the stress binary as third argument"
    stress_bin=$(cd "$(dirname "$stress_bin")" && pwd)/$(basename "$stress_bin")
    min_reports=1
}
work_stress() {
    prog "$stress_bin" 4 100000 1
}

# ---- driver ------------------------------------------------------------------

case $name in
    python|sqlite|git|cc|stress) ;;
    *) usage ;;
esac
min_reports=1
min_allocations=1
"setup_$name" "$@"

work=$(mktemp -d "${TMPDIR:-/tmp}/mpool-program-$name.XXXXXX")
if [[ ${MPOOL_PROGRAMS_KEEP:-0} == 1 ]]; then
    echo "run.sh: keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

declare -A seconds status
for mode in plain preload; do
    mkdir -p "$work/$mode/run" "$work/$mode/result"
    start=$(date +%s.%N)
    set +e
    ( cd "$work/$mode/run" || exit 1; set -e; "work_$name" ) \
        > "$work/$mode/stdout" 2> "$work/$mode/stderr"
    status[$mode]=$?
    set -e
    seconds[$mode]=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    echo "run.sh: $name: $mode run: exit ${status[$mode]}, ${seconds[$mode]} s"
done

problems=()
for mode in plain preload; do
    if [[ ${status[$mode]} != 0 ]]; then
        problems+=("$mode run exited with status ${status[$mode]}")
        echo "---- $mode stderr (last 30 lines)"
        tail -n 30 "$work/$mode/stderr"
    fi
done

# stdout, byte for byte
if ! cmp -s "$work/plain/stdout" "$work/preload/stdout"; then
    problems+=("stdout differs")
    echo "---- stdout: diff plain preload (first 40 lines)"
    diff "$work/plain/stdout" "$work/preload/stdout" | head -n 40 || true
fi

# result files, byte for byte
(cd "$work/plain/result" && find . -type f | sort) > "$work/plain.files"
(cd "$work/preload/result" && find . -type f | sort) > "$work/preload.files"
if ! cmp -s "$work/plain.files" "$work/preload.files"; then
    problems+=("the runs left different result files")
else
    while IFS= read -r f; do
        if ! cmp "$work/plain/result/$f" "$work/preload/result/$f"; then
            problems+=("result file ${f#./} differs")
        fi
    done < "$work/plain.files"
fi

# stderr: the reports and any message of the drop-in go to MPOOL_LOG_FILE
log="$work/preload/mpool.log"
touch "$log"
if ! cmp -s "$work/plain/stderr" "$work/preload/stderr"; then
    problems+=("stderr differs")
    echo "---- stderr: diff plain preload (first 40 lines)"
    diff "$work/plain/stderr" "$work/preload/stderr" | head -n 40 || true
fi
if grep -q '^mpool:' "$log"; then
    problems+=("the drop-in reported problems")
    echo "---- mpool messages of the preloaded run"
    grep '^mpool:' "$log" | awk 'NR <= 20'
fi

# proof that the drop-in served the program: each process's report at exit
# (MPOOL_SHOW_STATS) says how many allocations it counted
reports=$(grep -c '^mpool report: default pool' "$log" || true)
counts=$(sed -n 's/^  successful *\([0-9]*\) allocations.*/\1/p' "$log")
serving=$(printf '%s\n' "$counts" | awk '$1 > 0 { n++ } END { print n + 0 }')
allocations=$(printf '%s\n' "$counts" | awk '{ s += $1 } END { print s + 0 }')
echo "run.sh: $name: $reports preloaded processes reported at exit ($serving with allocations," \
     "$allocations allocations in all; expected at least $min_reports and $min_allocations)"
if [[ $serving -lt 1 || $reports -lt $min_reports || $allocations -lt $min_allocations ]]; then
    problems+=("the preloaded run does not show the drop-in at work ($reports reports, $serving with allocations, $allocations allocations)")
fi

if [[ ${#problems[@]} -gt 0 ]]; then
    for p in "${problems[@]}"; do echo "run.sh: $name: FAIL: $p" >&2; done
    [[ ${MPOOL_PROGRAMS_KEEP:-0} == 1 ]] || echo "run.sh: rerun with MPOOL_PROGRAMS_KEEP=1 to keep $work" >&2
    exit 1
fi
echo "run.sh: $name: PASS (plain ${seconds[plain]} s, preloaded ${seconds[preload]} s;" \
     "stdout $(wc -c < "$work/plain/stdout") bytes identical)"
