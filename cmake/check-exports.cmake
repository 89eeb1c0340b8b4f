# Checks that a shared library exports exactly the functions that a header
# marks MPOOL_API: nothing internal leaks out of -fvisibility=hidden and
# nothing public is missing.
#
#   cmake -DLIB=libmpool.so -DHEADER=include/mpool.h [-DNM=nm] -P check-exports.cmake
foreach(var LIB HEADER)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check-exports: -D${var}=... is required")
    endif()
endforeach()
if(NOT NM)
    set(NM nm)
endif()

# Names declared in the header: "MPOOL_API <type> [*]name(".
file(READ "${HEADER}" header)
string(REGEX REPLACE "#[ \t]*(define|undef)[ \t]+MPOOL_API[^\n]*" "" header "${header}")
string(REGEX MATCHALL "MPOOL_API[^;(]*[ *]([A-Za-z_][A-Za-z_0-9]*)[ \t]*\\(" decls "${header}")
set(expected "")
foreach(decl IN LISTS decls)
    string(REGEX REPLACE ".*[ *]([A-Za-z_][A-Za-z_0-9]*)[ \t]*\\($" "\\1" name "${decl}")
    list(APPEND expected "${name}")
endforeach()
list(REMOVE_DUPLICATES expected)
list(SORT expected)
if(NOT expected)
    message(FATAL_ERROR "check-exports: no MPOOL_API declarations found in ${HEADER}")
endif()

# Names the library exports (defined dynamic symbols of any global kind).
execute_process(COMMAND "${NM}" -D --defined-only "${LIB}"
    OUTPUT_VARIABLE nm_out RESULT_VARIABLE rc ERROR_VARIABLE nm_err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "check-exports: ${NM} failed on ${LIB}: ${nm_err}")
endif()
string(REPLACE "\n" ";" lines "${nm_out}")
set(exported "")
foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) (.+)$")
        set(kind "${CMAKE_MATCH_1}")
        set(name "${CMAKE_MATCH_2}")
        string(REGEX REPLACE "@.*$" "" name "${name}")
        # Lower-case kinds are local; toolchain and sanitizer symbols start with
        # an underscore (_init, _fini, __bss_start, __asan_*, __odr_asan_*...).
        if(kind MATCHES "^[A-Z]$" AND NOT name MATCHES "^_")
            list(APPEND exported "${name}")
        endif()
    endif()
endforeach()
list(REMOVE_DUPLICATES exported)
list(SORT exported)

set(extra ${exported})
list(REMOVE_ITEM extra ${expected})
set(missing ${expected})
if(exported)
    list(REMOVE_ITEM missing ${exported})
endif()

list(LENGTH expected n_expected)
list(LENGTH exported n_exported)
if(extra OR missing)
    if(extra)
        list(JOIN extra "\n  " extra_text)
        message(SEND_ERROR "exported but not MPOOL_API in ${HEADER} (make them static or hidden):\n  ${extra_text}")
    endif()
    if(missing)
        list(JOIN missing "\n  " missing_text)
        message(SEND_ERROR "declared MPOOL_API but not exported by ${LIB}:\n  ${missing_text}")
    endif()
    message(FATAL_ERROR "check-exports: ${n_exported} exported, ${n_expected} expected")
endif()
message(STATUS "check-exports: ${LIB} exports exactly the ${n_expected} MPOOL_API functions")
