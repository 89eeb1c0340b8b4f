/*
 * list.h - the intrusive doubly linked lists of the library (free runs of
 * the page allocator, a class's partial slabs and all its slabs, a pool's
 * huge blocks): one node may sit on several lists through different link
 * fields, so the operations take the names of the fields.
 *
 *   LIST_PUSH(head, node, next, prev)    node becomes the first element
 *   LIST_REMOVE(head, node, next, prev)  node leaves the list; its links are cleared
 *
 * head is an lvalue holding the first node (NULL when empty).
 */
#ifndef MPOOL_LIST_H
#define MPOOL_LIST_H

#include <stddef.h>

#define LIST_PUSH(head, node, next, prev)     \
    do {                                      \
        (node)->prev = NULL;                  \
        (node)->next = (head);                \
        if (head)                             \
            (head)->prev = (node);            \
        (head) = (node);                      \
    } while (0)

#define LIST_REMOVE(head, node, next, prev)   \
    do {                                      \
        if ((node)->prev)                     \
            (node)->prev->next = (node)->next; \
        else                                  \
            (head) = (node)->next;            \
        if ((node)->next)                     \
            (node)->next->prev = (node)->prev; \
        (node)->next = (node)->prev = NULL;   \
    } while (0)

#endif /* MPOOL_LIST_H */
