/* free(p); free(q); free(p), and the program ends soon after */
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    warm(n);
    char *keep = malloc(n), *p = malloc(n), *q = malloc(n);
    free(p);
    free(q);
    free(opaque(p));
    (void)keep;
    return survived();
}
