/* malloc_usable_size of what is not a live block: argv[2] says which */
#include <malloc.h>
#include "misuse.h"
static char not_heap[64];
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    const char *what = argc > 2 ? argv[2] : "freed";
    warm(n);
    char *p = malloc(n), *q = malloc(n);
    char *ask = q;
    if (!strcmp(what, "freed")) {
        free(q);
    } else if (!strcmp(what, "interior")) {
        ask = q + 16;
    } else if (!strcmp(what, "unaligned")) {
        ask = q + 1;
    } else {
        ask = not_heap + 16;
    }
    printf("%zu\n", malloc_usable_size(opaque(ask)));
    (void)p;
    return survived();
}
