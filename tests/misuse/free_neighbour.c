/* free(p + 4096): for blocks of up to 4 KiB, the start of a free block
 * nearby (or a block never carved); inside the block for larger ones */
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    warm(n);
    char *p = malloc(n);
    free(opaque(p + 4096));
    return survived();
}
