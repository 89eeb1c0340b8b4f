/* an overflow of 8 bytes past block p into the free block q after it (the
 * link of a free block), then allocations of the size until the allocator
 * has used q's link */
#include <malloc.h>
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    char *p = malloc(n), *q = malloc(n);
    size_t usable = malloc_usable_size(p);
    if (q != p + usable) {
        printf("not adjacent: %p %p\n", (void *)p, (void *)q);
        return 3;
    }
    free(q);
    memset(opaque(p) + usable, 0x41, 8);
    static void *got[4096];
    for (int i = 0; i < 4096; i++)
        got[i] = malloc(n);
    return survived();
}
