/* freed by another thread, then by the main thread */
#include <pthread.h>
#include "misuse.h"
static void *release(void *p)
{
    free(p);
    return NULL;
}
int main(int argc, char **argv)
{
    size_t n = size_arg(argc, argv);
    warm(n);
    char *keep = malloc(n), *p = malloc(n);
    pthread_t t;
    pthread_create(&t, NULL, release, p);
    pthread_join(t, NULL);
    free(opaque(p));
    (void)keep;
    return survived();
}
