/*
 * dropin/plugin.c - a tiny shared library that hard.c loads with dlopen: its
 * constructor allocates and frees (running inside dlopen, with the loader's
 * lock held), and plugin_result() reports what it saw.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "helper.h"

int plugin_result(void);
char *plugin_strdup(const char *s);

static int result = -1; /* 1: every block owned by mpool */

__attribute__((constructor)) static void plugin_init(void)
{
    void *blocks[32];
    int ok = 1;
    for (int i = 0; i < 32; i++) {
        blocks[i] = malloc((size_t)i * 97 + 1);
        ok &= blocks[i] != NULL && owned(blocks[i]);
    }
    char *s = strdup("plugin constructor");
    ok &= s != NULL && owned(s);
    free(s);
    for (int i = 0; i < 32; i++)
        free(blocks[i]);
    result = ok;
}

__attribute__((destructor)) static void plugin_fini(void)
{
    void *p = calloc(10, 10);
    if (!p || !owned(p))
        helper_say(2, "FAIL plugin destructor: calloc = %p not owned", p);
    free(p);
}

int plugin_result(void)
{
    return result;
}

char *plugin_strdup(const char *s)
{
    return strdup(s);
}
