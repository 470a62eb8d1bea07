/* stream.c - see stream.h. */
#include "stream.h"

#include <stdlib.h>

uint64_t vp_stream_window(uint64_t budget, uint64_t piece)
{
    uint64_t w = budget / 4, least = 4 * piece;
    if (w < least) w = least;
    return w < budget ? w : budget;
}

int vp_stream_pin(double *acc, uint64_t bytes, uint64_t pinned, uint64_t room, uint64_t cold)
{
    if (!bytes || pinned >= room || bytes > room - pinned) return 0;
    if (cold <= room) return 1; /* everything fits: nothing is streamed */
    /* room/cold of each piece's bytes accrue; a piece is pinned when the
     * accrued share covers it */
    *acc += (double)bytes * (double)room / (double)cold;
    if (*acc < (double)bytes) return 0;
    *acc -= (double)bytes;
    return 1;
}

static int rank(const void *a, const void *b)
{
    const struct vp_spc *x = a, *y = b;
    if (x->cls != y->cls) return x->cls < y->cls ? -1 : 1;
    if (x->cls == VP_SC_HOT) return x->key > y->key ? -1 : x->key < y->key;
    return x->key < y->key ? -1 : x->key > y->key;
}

uint64_t vp_stream_desire(struct vp_spc *c, size_t n, uint64_t budget)
{
    if (n) qsort(c, n, sizeof *c, rank);
    uint64_t used = 0;
    size_t i = 0;
    for (; i < n && c[i].bytes <= budget - used; i++) {
        c[i].want = 1;
        used += c[i].bytes;
    }
    for (; i < n; i++) c[i].want = 0;
    return used;
}
