/* A program that uses an installed mpool, built with pkg-config and with CMake. */
#include <mpool.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    mpool_t *pool = mpool_create(NULL);
    char *s = mpool_alloc(pool, 32);
    if (!pool || !s)
        return 1;
    strcpy(s, "installed mpool works");
    int ok = mpool_owns(pool, s) && mpool_check(pool) == 0;
    puts(s);
    mpool_free(pool, s);
    mpool_destroy(pool);
    return ok ? 0 : 1;
}
