/* stream.c - see stream.h. */
#include "stream.h"

#include <stdlib.h>

int vp_uses_note(struct vp_uses *u, uint64_t t)
{
    if (u->visit && t - u->last <= VP_VISIT_GAP) {
        u->last = t;
        return 0;
    }
    u->prev_visit = u->visit;
    u->visit = u->last = t;
    return u->prev_visit && t - u->prev_visit > VP_HOT_GAP;
}

int vp_uses_hot(const struct vp_uses *u, uint64_t now)
{
    if (!u->visit || now - u->last > 4 * VP_HOT_GAP) return 0;
    return (u->prev_visit && u->visit - u->prev_visit <= VP_HOT_GAP) || u->last - u->visit >= VP_HOT_GAP;
}

int vp_uses_visiting(const struct vp_uses *u, uint64_t now) { return u->visit && now - u->last <= VP_VISIT_GAP; }

uint64_t vp_uses_next(const struct vp_uses *u, uint64_t now) { return vp_policy_next_use(u->prev_visit, u->visit, now); }

uint64_t vp_stream_window(uint64_t budget, uint64_t piece, uint64_t want)
{
    uint64_t w = want ? want : budget / 4, least = 4 * piece;
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
    if (x->cls == VP_SC_HOT || x->cls == VP_SC_NOW) return x->key > y->key ? -1 : x->key < y->key;
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
