// delete (not delete[]) of an array whose elements have a destructor: the
// array starts with a cookie (the element count), so delete passes the
// address of the first element, 8 bytes into the block
#include <cstddef>
#include <cstdio>
#include <cstdlib>
struct element {
    long x;
    ~element();
};
element::~element() { __asm__ volatile("" : : "r"(x) : "memory"); }
static element *opaque(element *p)
{
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}
int main(int argc, char **argv)
{
    std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 8;
    std::size_t k = n / sizeof(element) ? n / sizeof(element) : 1;
    element *a = opaque(new element[k]);
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
    delete a;
    std::puts("survived");
    return 0;
}
