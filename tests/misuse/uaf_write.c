/* writes 8 bytes into a block after freeing it, then (argv[2] "reuse")
 * allocates and frees enough blocks of the size for it to be handed out
 * again, or (argv[2] "end") lets the program end */
#include "misuse.h"
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    const char *when = argc > 2 ? argv[2] : "end";
    char *p = opaque(malloc(n));
    free(p);
    memset(opaque(p), 0x5a, 8);
    if (!strcmp(when, "reuse")) {
        for (int round = 0; round < 64; round++) {
            void *w[128];
            for (int i = 0; i < 128; i++)
                w[i] = malloc(n);
            for (int i = 0; i < 128; i++)
                free(w[i]);
        }
    }
    return survived();
}
