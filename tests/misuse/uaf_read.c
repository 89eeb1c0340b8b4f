/* reads a block after freeing it */
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    volatile char *p = opaque(malloc(n));
    p[0] = 1;
    free((void *)p);
    printf("%d\n", p[n / 2]);
    return survived();
}
