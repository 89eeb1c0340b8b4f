// sized operator delete with a size of another class than the block's
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>
int main(int argc, char **argv)
{
    std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 8;
    void *p = ::operator new(n);
    __asm__ volatile("" : "+r"(p) : : "memory");
    ::operator delete(p, n * 4 + 64);
    std::puts("survived");
    return 0;
}
