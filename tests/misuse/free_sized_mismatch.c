/* free_sized with a size of another class than the block's (C23) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    void (*free_sized)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    if (!free_sized) {
        puts("no free_sized");
        return 2;
    }
    warm(n);
    char *p = malloc(n);
    free_sized(opaque(p), n * 4 + 64);
    return survived();
}
