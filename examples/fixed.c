/*
 * fixed.c - a fixed-size object pool: a binary tree of nodes built, searched
 * and freed at once, a double free caught, and the parent pool's report
 * listing the fixed pool.
 */
#include <stdio.h>
#include <stdlib.h>

#include <mpool.h>

typedef struct node {
    struct node *left, *right;
    int key;
} node_t;

static void logger(mpool_error_t err, const char *message, void *arg)
{
    (void)arg;
    printf("  logged (%s): %s\n", mpool_strerror(err), message);
}

int main(void)
{
    mpool_t *pool = mpool_create(NULL);
    mpool_fixed_config_t fc = mpool_fixed_config_default(sizeof(node_t));
    fc.initial_count = 1000;
    fc.max_count = 100000;
    fc.thread_safe = false;
    fc.parent = pool;
    fc.on_error = MPOOL_ON_ERROR_LOG;
    fc.logger = logger;
    mpool_fixed_t *nodes = mpool_fixed_create(&fc);
    if (!pool || !nodes) {
        fprintf(stderr, "create failed: %s\n", mpool_strerror(mpool_last_error()));
        return EXIT_FAILURE;
    }

    node_t *root = NULL;
    unsigned x = 1;
    for (int i = 0; i < 800; i++) { /* a tree of 800 random keys (or fewer: duplicates) */
        x = x * 1103515245u + 12345u;
        int key = (int)(x >> 16) % 10000;
        node_t **at = &root;
        while (*at && (*at)->key != key)
            at = key < (*at)->key ? &(*at)->left : &(*at)->right;
        if (*at)
            continue;
        node_t *n = mpool_fixed_alloc(nodes);
        if (!n)
            return EXIT_FAILURE;
        n->left = n->right = NULL;
        n->key = key;
        *at = n;
    }
    printf("tree: %zu/%zu nodes in use\n", mpool_fixed_in_use(nodes), mpool_fixed_capacity(nodes));

    node_t *leaf = root;
    while (leaf->left)
        leaf = leaf->left;
    printf("smallest key %d; freeing a node twice:\n", leaf->key);
    /* (detached from the tree first) */
    node_t **parent_link = &root;
    while (*parent_link != leaf)
        parent_link = &(*parent_link)->left;
    *parent_link = leaf->right;
    mpool_fixed_free(nodes, leaf);
    mpool_fixed_free(nodes, leaf); /* reported; nothing changes */

    mpool_report(pool, MPOOL_REPORT_TEXT, NULL, NULL); /* lists the fixed pool */

    mpool_fixed_reset(nodes); /* the whole tree at once */
    printf("after reset: %zu/%zu nodes in use\n", mpool_fixed_in_use(nodes), mpool_fixed_capacity(nodes));
    mpool_fixed_destroy(nodes);
    mpool_destroy(pool);
    return EXIT_SUCCESS;
}
