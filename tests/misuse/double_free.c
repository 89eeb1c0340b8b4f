/* free(p); free(p) */
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    warm(n);
    char *keep = malloc(n), *p = malloc(n);
    free(p);
    free(opaque(p));
    free(keep);
    return survived();
}
