#!/usr/bin/env bash
# check.sh - renders manual pages as man(1) shows them and fails on any warning.
#
#   tests/man/check.sh [--api HEADER] PAGE...
#
# Each PAGE is rendered twice, and anything either prints on stderr fails it:
#   MANWIDTH=80 man --warnings=w -l PAGE   what a reader sees (man-db runs
#                                          preconv, tbl and groff), every
#                                          groff warning category on;
#   groff -t -man -Tutf8 -ww -z PAGE       groff alone, every warning on.
# Both exit 0 after a warning (man-db 2.11, groff 1.22), hence the stderr
# test.  A rendered line wider than 80 columns (a SYNOPSIS or EXAMPLES line
# in no-fill mode, which groff does not warn about) fails too.
# With --api HEADER, the page named mpool.3 must also name every MPOOL_API
# function, every typedef'd type, every MPOOL_ constant and every field of
# the structures of HEADER (as a word of the page's source).
#
# Exit: 0 every page clean, 1 a problem (each printed), 2 bad usage,
# 77 man or groff missing (ctest reports the test as skipped).
set -euo pipefail

api=
pages=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --api) api=${2:?--api needs a header}; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "check.sh: unknown option $1" >&2; exit 2 ;;
        *) pages+=("$1"); shift ;;
    esac
done
[[ ${#pages[@]} -gt 0 ]] || { echo "usage: check.sh [--api HEADER] PAGE..." >&2; exit 2; }

for tool in man groff; do
    if ! command -v "$tool" > /dev/null 2>&1; then
        echo "check.sh: $tool not found (Debian: man-db, groff-base); skipping"
        exit 77
    fi
done

export LC_ALL=C.UTF-8 MANWIDTH=80
# No pager, no formatted-page cache, no user configuration of man.
export MANPAGER=cat PAGER=cat MANOPT=
unset MANROFFOPT GROFF_TMAC_PATH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

fail() { echo "FAIL $page: $*"; failed=1; page_failed=1; }

for page in "${pages[@]}"; do
    page_failed=0
    if [[ ! -r $page ]]; then
        fail "cannot read it"
        continue
    fi
    if ! man --warnings=w -l "$page" > "$work/out" 2> "$work/err" || [[ -s $work/err ]]; then
        fail "man --warnings=w -l printed:"
        sed 's/^/    /' "$work/err"
    fi
    if ! groff -t -man -Tutf8 -ww -z "$page" 2> "$work/groff"; then
        fail "groff exited with an error"
    fi
    if [[ -s $work/groff ]]; then
        fail "groff -ww printed:"
        sed 's/^/    /' "$work/groff"
    fi
    if [[ ! -s $work/out ]]; then
        fail "man rendered nothing"
    else
        # Display width (wc -L counts characters, not bytes, in a UTF-8 locale);
        # the lines themselves are looked for only when the widest is too wide.
        if [[ $(wc -L < "$work/out") -gt $MANWIDTH ]]; then
            while IFS= read -r line; do
                if [[ $(printf '%s' "$line" | wc -L) -gt $MANWIDTH ]]; then
                    fail "a rendered line is wider than $MANWIDTH columns:"
                    echo "    $line"
                fi
            done < "$work/out"
        fi
    fi

    if [[ -n $api && $(basename "$page") == mpool.3 ]]; then
        # Names the header declares, one per line.
        sed -e 's,/\*.*\*/,,' -e 's,//.*,,' "$api" | awk '
            # comments spanning lines: keep the code before and after them
            incomment { if (!/\*\//) next; incomment = 0; sub(/.*\*\//, "") }
            /\/\*/ { incomment = 1; sub(/\/\*.*/, "") }
            /^MPOOL_API/ {
                line = $0; sub(/\(.*/, "", line); n = split(line, w, /[ *]+/); print w[n]
            }
            /^typedef/ && /;/ {                              # one line: a function type or a struct
                line = $0
                if (match(line, /\(\*[A-Za-z_]+\)/)) { print substr(line, RSTART + 2, RLENGTH - 3); next }
                sub(/;[ \t]*$/, "", line); sub(/.*}/, "", line); n = split(line, w, /[ *]+/); print w[n]
            }
            /^typedef (struct|enum)/ && /\{$/ { body = 1; next }
            body && /^}/ { body = 0; line = $0; sub(/;.*/, "", line); n = split(line, w, /[ }]+/); print w[n]; next }
            body {
                line = $0
                gsub(/\[[^]]*\]/, "", line)                  # array sizes
                if (line ~ /MPOOL_[A-Z_]+/) {               # enum constants
                    while (match(line, /MPOOL_[A-Z_]+/)) {
                        print substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
                    }
                    next
                }
                if (line !~ /;/) next
                sub(/;.*/, "", line)
                n = split(line, parts, /,/)
                for (i = 1; i <= n; i++) { m = split(parts[i], w, /[ *]+/); if (w[m] != "") print w[m] }
            }
            /^#define MPOOL_[A-Z_]+/ { split($0, w, /[ \t]+/); if (w[2] !~ /\(/ && w[2] != "MPOOL_H") print w[2] }
        ' | sort -u > "$work/names"
        if [[ $(wc -l < "$work/names") -lt 50 ]]; then
            fail "found only $(wc -l < "$work/names") names in $api (the parser is broken)"
        fi
        # The page's source with roff escapes of '-' and font changes removed.
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page" > "$work/words"
        grep -owF -f "$work/names" "$work/words" | sort -u > "$work/found" || true
        while read -r name; do
            fail "does not document $name (declared in $(basename "$api"))"
        done < <(comm -23 "$work/names" "$work/found")
    fi
    [[ $page_failed == 1 ]] || echo "ok   $page"
done
exit $failed
