/* free of an address no allocation returned: a static array */
#include "misuse.h"
static char not_heap[64];
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    warm(n);
    free(opaque(not_heap + 16));
    return survived();
}
