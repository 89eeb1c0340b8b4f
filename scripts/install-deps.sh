#!/usr/bin/env bash
# install-deps.sh - make sure the tools that build, test and lint mpool are here.
#
#   scripts/install-deps.sh            check; install what is missing (Debian/Ubuntu)
#   scripts/install-deps.sh --dry-run  check; print the install command, change nothing
#   scripts/install-deps.sh --bench    also the benchmark peers and chart tool (optional)
#
# Checks: cmake, make, a C and a C++ compiler, pkg-config, Criterion
# (criterion/criterion.h, package libcriterion-dev), cppcheck, clang, clang-tidy,
# valgrind, the sanitizer runtimes of the C compiler ($CC, default cc), and
# the real programs tests/programs/ runs under the drop-in: /usr/bin/python3
# (python3), sqlite3, git, gcc, nm and objdump (binutils); gnuplot (gnuplot-nox)
# for tools/mpool-plot, which the drop-in statistics test runs; man (man-db)
# and groff (groff-base), with which the man_pages test renders man/;
# libunwind8, with which debug mode captures call sites fast.
# Missing packages are installed with apt-get as root, or through sudo when it
# works without a password; `apt-get update` runs only after a failed install.
# Otherwise the exact command is printed and the script exits 1.
#
# --bench (make bench): python3 is required; the peers' libraries libmimalloc2.0,
# libjemalloc2, libtcmalloc-minimal4 and redis-server (the server workload; it
# brings redis-benchmark), and the fixed-pool and arena peers libboost-dev,
# libapr1-dev and libtalloc-dev are optional: when they cannot be installed a
# note is printed and the benchmark skips that allocator (or those rows).
#
# Exit: 0 all present (or installed, or --dry-run), 1 missing and not installed,
# 2 bad usage.  MPOOL_DEPS_PRETEND_MISSING="pkg ..." treats those packages as
# missing (to exercise the install path).
set -euo pipefail

dry_run=0
bench=0
for arg in "$@"; do
    case "$arg" in
        -n|--dry-run) dry_run=1 ;;
        --bench) bench=1 ;;
        -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

missing=()
pretend=" ${MPOOL_DEPS_PRETEND_MISSING:-} "

need() { # need PACKAGE: record a missing package once
    case " ${missing[*]:-} " in *" $1 "*) ;; *) missing+=("$1") ;; esac
}
pretended() { [[ "$pretend" == *" $1 "* ]]; }
have() { command -v "$1" > /dev/null 2>&1; }
check_cmd() { # check_cmd COMMAND PACKAGE
    if pretended "$2" || ! have "$1"; then need "$2"; fi
}

check_cmd cmake cmake
check_cmd make make
check_cmd pkg-config pkg-config
check_cmd cppcheck cppcheck
check_cmd clang clang
check_cmd clang-tidy clang-tidy
check_cmd valgrind valgrind

# Real programs of tests/programs/ (run with and without LD_PRELOAD of
# libmpool-malloc.so).  Python must be Debian's, whatever python3 PATH finds.
if pretended python3 || [[ ! -x /usr/bin/python3 ]]; then need python3; fi
check_cmd sqlite3 sqlite3
check_cmd git git
if pretended gcc || ! have gcc; then need gcc; fi
check_cmd nm binutils
check_cmd objdump binutils
# tools/mpool-plot draws the statistics file (and make bench its chart).
check_cmd gnuplot gnuplot-nox
# The man_pages test renders man/*.[13] with man -l and groff.
check_cmd man man-db
check_cmd groff groff-base

cc_cmd="${CC:-cc}"
if pretended gcc || ! have "${cc_cmd%% *}"; then
    case "$(basename "${cc_cmd%% *}")" in
        clang*) need clang ;;
        *) need gcc ;;
    esac
fi
cxx_cmd="${CXX:-c++}"
if pretended g++ || ! have "${cxx_cmd%% *}"; then
    case "$(basename "${cxx_cmd%% *}")" in
        clang*) need clang ;;
        *) need g++ ;;
    esac
fi

criterion_found=0
if ! pretended libcriterion-dev; then
    if have pkg-config && pkg-config --exists criterion 2> /dev/null; then
        criterion_found=1
    else
        for dir in /usr/include /usr/local/include; do
            if [[ -f "$dir/criterion/criterion.h" ]]; then criterion_found=1; fi
        done
    fi
fi
[[ $criterion_found == 1 ]] || need libcriterion-dev

# Sanitizer runtimes: gcc brings its own (libasan/libubsan/libtsan come with
# libgcc-*-dev); Debian's clang needs libclang-rt-dev.  One tiny link each.
if have "${cc_cmd%% *}"; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    printf 'int main(void) { return 0; }\n' > "$tmp/t.c"
    for san in address,undefined thread; do
        if pretended "sanitizer-$san" || \
           ! $cc_cmd -fsanitize="$san" "$tmp/t.c" -o "$tmp/t" > /dev/null 2>&1; then
            case "$($cc_cmd --version 2> /dev/null | head -n 1)" in
                *clang*) need libclang-rt-dev ;;
                *) echo "install-deps: $cc_cmd cannot link -fsanitize=$san" \
                        "(install the libasan/libubsan/libtsan matching your gcc)" >&2
                   need gcc ;;
            esac
        fi
    done
fi

# Benchmarks (--bench): python3 runs bench/run.py; the rest is optional.
optional=()
want_optional() { # want_optional PACKAGE: record a missing optional package once
    case " ${optional[*]:-} " in *" $1 "*) ;; *) optional+=("$1") ;; esac
}
have_lib() { # have_lib SONAME: the dynamic loader knows it, or it lies in a library dir
    local dir
    if have ldconfig && ldconfig -p 2> /dev/null | grep -q "^[[:space:]]*$1 "; then return 0; fi
    for dir in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
        if [[ -e "$dir/$1" ]]; then return 0; fi
    done
    return 1
}
check_lib() { # check_lib SONAME PACKAGE: an optional library
    if pretended "$2" || ! have_lib "$1"; then want_optional "$2"; fi
}
# Debug mode captures call sites with libunwind's unw_backtrace when the
# system has it (src/callsite.c; else glibc's backtrace(), ~14x slower).
if pretended libunwind8 || ! have_lib libunwind.so.8; then need libunwind8; fi
if [[ $bench == 1 ]]; then
    check_cmd python3 python3
    check_lib libmimalloc.so.2 libmimalloc2.0
    check_lib libjemalloc.so.2 libjemalloc2
    check_lib libtcmalloc_minimal.so.4 libtcmalloc-minimal4
    if pretended redis-server || ! have redis-server || ! have redis-benchmark; then
        want_optional redis-server
    fi
    # Fixed-size pool peers (bench/fixed.cpp): Boost.Pool (header only), APR
    # pools and talloc; the fixed-pool rows skip a peer whose header is missing.
    check_header() { # check_header HEADER PACKAGE
        if pretended "$2" || [[ ! -f "/usr/include/$1" ]]; then want_optional "$2"; fi
    }
    check_header boost/pool/object_pool.hpp libboost-dev
    check_header apr-1.0/apr_pools.h libapr1-dev
    check_header talloc.h libtalloc-dev
fi

# Installs the optional packages one by one (a failure is a note, not an
# error); called after the required ones are in place.
install_optional() {
    [[ ${#optional[@]} -gt 0 ]] || return 0
    echo "install-deps: optional (benchmarks) missing: ${optional[*]}"
    if [[ $dry_run == 1 ]]; then
        echo "install-deps: would run: apt-get install -y --no-install-recommends ${optional[*]}"
        return 0
    fi
    local prefix=() pkg updated=0
    if [[ $(id -u) != 0 ]]; then
        if have sudo && sudo -n true 2> /dev/null; then prefix=(sudo); else
            echo "install-deps: note: not root; the benchmarks skip what is missing" \
                 "(sudo apt-get install ${optional[*]})" >&2
            return 0
        fi
    fi
    if ! have apt-get; then
        echo "install-deps: note: no apt-get; the benchmarks skip: ${optional[*]}" >&2
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    for pkg in "${optional[@]}"; do
        if "${prefix[@]}" apt-get install -y --no-install-recommends "$pkg" > /dev/null 2>&1; then
            echo "install-deps: installed (optional): $pkg"
            continue
        fi
        if [[ $updated == 0 ]]; then
            updated=1
            "${prefix[@]}" apt-get update > /dev/null 2>&1 || true
            if "${prefix[@]}" apt-get install -y --no-install-recommends "$pkg" > /dev/null 2>&1; then
                echo "install-deps: installed (optional): $pkg"
                continue
            fi
        fi
        echo "install-deps: note: could not install optional $pkg; the benchmarks skip it" >&2
    done
}

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all dependencies present"
    install_optional
    exit 0
fi

install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
echo "install-deps: missing: ${missing[*]}"

if [[ $dry_run == 1 ]]; then
    echo "install-deps: would run: ${install_cmd[*]}"
    exit 0
fi

if [[ $(id -u) == 0 ]]; then
    sudo_cmd=()
elif have sudo && sudo -n true 2> /dev/null; then
    sudo_cmd=(sudo)
else
    echo "install-deps: not root and no password-less sudo; run:" >&2
    echo "  sudo ${install_cmd[*]}" >&2
    exit 1
fi
if ! have apt-get; then
    echo "install-deps: apt-get not found; install these packages by hand: ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: ${sudo_cmd[*]:+${sudo_cmd[*]} }${install_cmd[*]}"
if ! "${sudo_cmd[@]}" "${install_cmd[@]}"; then
    echo "install-deps: install failed; refreshing the package lists and retrying"
    "${sudo_cmd[@]}" apt-get update
    if ! "${sudo_cmd[@]}" "${install_cmd[@]}"; then
        echo "install-deps: could not install: ${missing[*]}" >&2
        exit 1
    fi
fi
echo "install-deps: installed: ${missing[*]}"
install_optional
