/* writes BYTES bytes before the start of a block (argv[2]), directly or with
 * memcpy (argv[3]), then frees it */
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    size_t k = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1;
    int use_memcpy = argc > 3 && !strcmp(argv[3], "memcpy");
    char src[64];
    memset(src, 0x5a, sizeof src);
    char *p = opaque(malloc(n));
    if (use_memcpy) {
        memcpy(opaque(p - k), src, k);
    } else {
        for (size_t i = 1; i <= k; i++)
            ((volatile char *)p)[-(long)i] = 0x5a;
    }
    free(p);
    return survived();
}
