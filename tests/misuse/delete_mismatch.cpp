// a block released by the wrong family: argv[2] is
//   delete_of_new_array  operator new[] then operator delete
//   delete_array_of_new  operator new then operator delete[]
//   free_of_new          operator new then free
//   delete_of_malloc     malloc then operator delete
// (the raw operators: what the allocator sees of `delete new T[k]` for a T
// without a destructor, whose array has no cookie)
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
    const char *how = argc > 2 ? argv[2] : "delete_of_new_array";
    if (!std::strcmp(how, "delete_of_new_array")) {
        ::operator delete(opaque(::operator new[](n)));
    } else if (!std::strcmp(how, "delete_array_of_new")) {
        ::operator delete[](opaque(::operator new(n)));
    } else if (!std::strcmp(how, "free_of_new")) {
        std::free(opaque(::operator new(n)));
    } else if (!std::strcmp(how, "delete_of_malloc")) {
        ::operator delete(opaque(std::malloc(n)));
    } else {
        std::puts("unknown case");
        return 2;
    }
    std::puts("survived");
    return 0;
}
