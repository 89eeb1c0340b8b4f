/* free_aligned_sized with another alignment than the block was allocated with */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    void (*fas)(void *, size_t, size_t) = (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (!fas) {
        puts("no free_aligned_sized");
        return 2;
    }
    warm(n);
    char *p = aligned_alloc(8192, n);
    fas(opaque(p), 16, n);
    return survived();
}
