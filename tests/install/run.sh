#!/usr/bin/env bash
# Installs the build tree BUILD into a temporary prefix, then builds and runs
# tests/install/consumer.c against it twice: with pkg-config and through the
# CMake package (find_package(mpool), shared and static).
#
#   tests/install/run.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" > /dev/null
libdir=$(dirname "$(find "$prefix" -name mpool.pc -path '*pkgconfig*')")
libdir=${libdir%/pkgconfig}

echo "== pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -std=c11 -Wall -Wextra -Werror "$here/consumer.c" -o "$work/consumer_pc" \
    $(pkg-config --cflags --libs mpool) -Wl,-rpath,"$libdir"
"$work/consumer_pc"

echo "== CMake find_package(mpool)"
cmake -S "$here" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$work/cmake-build" > /dev/null
"$work/cmake-build/consumer_shared"
"$work/cmake-build/consumer_static"

echo "== installed malloc replacement"
out=$(MPOOL_SHOW_STATS=1 LD_PRELOAD="$libdir/libmpool-malloc.so" /bin/echo preloaded 2>&1)
echo "$out"
grep -q '^  successful *[1-9][0-9]* allocations' <<< "$out"

echo "== manual pages and mpool-plot"
for installed in man3/mpool.3 man1/mpool-plot.1; do
    find "$prefix" -path "*/man/$installed" | grep -q . || { echo "not installed: $installed" >&2; exit 1; }
done
[[ -x $prefix/bin/mpool-plot ]] || { echo "not installed: bin/mpool-plot" >&2; exit 1; }
