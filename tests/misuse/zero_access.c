/* reads or writes through malloc(0): argv[2] "read" or "write" */
#include "misuse.h"
int main(int argc, char **argv)
{
    const char *how = argc > 2 ? argv[2] : "write";
    volatile char *p = opaque(malloc(0));
    if (!strcmp(how, "read"))
        printf("%d\n", p[0]);
    else
        p[0] = 1;
    return survived();
}
