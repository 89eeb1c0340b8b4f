/* free(p + 8): inside a live block */
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    warm(n);
    char *p = malloc(n);
    free(opaque(p + 8));
    return survived();
}
