// aligned operator new released with another alignment: argv[2] is
//   smaller    new(n, align 4096), delete(p, align 64): 64 divides the address
//   unaligned  new(n, align 64), then the unaligned delete(p)
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
static void *opaque(void *p)
{
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}
int main(int argc, char **argv)
{
    std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 8;
    const char *how = argc > 2 ? argv[2] : "smaller";
    if (!std::strcmp(how, "smaller")) {
        ::operator delete(opaque(::operator new(n, std::align_val_t(4096))), std::align_val_t(64));
    } else if (!std::strcmp(how, "unaligned")) {
        ::operator delete(opaque(::operator new(n, std::align_val_t(64))));
    } else {
        std::puts("unknown case");
        return 2;
    }
    std::puts("survived");
    return 0;
}
