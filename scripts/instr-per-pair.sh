#!/usr/bin/env bash
# Instructions per alloc+free pair of the mpool API on a pool that is not
# thread safe, counted by valgrind's callgrind (a figure a noisy machine cannot
# move).  Runs the pair loop at N=100000 and N=1100000 and divides the
# difference of the totals by 1000000, so start-up costs cancel and the loop's
# own instructions are included.
#
#   scripts/instr-per-pair.sh PAIR_BINARY [SIZE...]     (sizes default to 16)
set -euo pipefail
bin=${1:?usage: instr-per-pair.sh PAIR_BINARY [SIZE...]}
shift
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(16)
command -v valgrind >/dev/null || { echo "instr-per-pair: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for size in "${sizes[@]}"; do
    a=$(count 100000 "$size")
    b=$(count 1100000 "$size")
    [ -n "$a" ] && [ -n "$b" ] || { echo "instr-per-pair: callgrind gave no count" >&2; exit 1; }
    echo "size $size: $(( (b - a) / 1000000 )) instructions per alloc+free pair"
done
