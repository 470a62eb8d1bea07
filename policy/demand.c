/* demand.c - see demand.h. */
#include "demand.h"

#include <stdlib.h>

void vp_policy_demand_range(uint64_t size, uint64_t off, uint64_t chunk, uint64_t most, uint64_t *first,
                            uint64_t *count)
{
    uint64_t nchunks = (size + chunk - 1) / chunk;
    uint64_t f = off / chunk;
    uint64_t want = most / chunk;
    if (want == 0) want = 1;
    *first = f;
    *count = nchunks - f < want ? nchunks - f : want;
}

uint64_t vp_policy_next_use(uint64_t prev, uint64_t last, uint64_t now)
{
    if (!prev || prev >= last) return VP_NEXT_UNKNOWN;
    uint64_t gap = last - prev;
    if (last > UINT64_MAX - 3 * gap) return VP_NEXT_UNKNOWN;
    if (now > last + 2 * gap) return VP_NEXT_STALE; /* more than an interval overdue */
    return last + gap;
}

static int soonest_first(const void *a, const void *b)
{
    const struct vp_cand *x = a, *y = b;
    return x->next < y->next ? -1 : x->next > y->next;
}

static int latest_first(const void *a, const void *b) { return soonest_first(b, a); }

static int least_recent_first(const void *a, const void *b)
{
    const struct vp_cand *x = a, *y = b;
    return x->last < y->last ? -1 : x->last > y->last;
}

static void order_victims(enum vp_policy_kind kind, struct vp_cand *v, size_t nv)
{
    if (nv) qsort(v, nv, sizeof *v, kind == VP_POLICY_LRU ? least_recent_first : latest_first);
}

size_t vp_policy_plan(enum vp_policy_kind kind, struct vp_cand *r, size_t nr, struct vp_cand *v, size_t nv,
                      uint64_t room)
{
    if (nr) qsort(r, nr, sizeof *r, soonest_first);
    order_victims(kind, v, nv);
    size_t k = 0;
    for (size_t i = 0; i < nr; i++) {
        r[i].admit = 0;
        size_t k0 = k;
        uint64_t room0 = room;
        while (room < r[i].bytes && k < nv && (kind == VP_POLICY_LRU || v[k].next > r[i].next))
            room += v[k++].bytes;
        if (room < r[i].bytes) { /* not worth what it would push out: later ones even less */
            k = k0;
            room = room0;
            for (size_t j = i + 1; j < nr; j++) r[j].admit = 0;
            break;
        }
        room -= r[i].bytes;
        r[i].admit = 1;
    }
    return k;
}

size_t vp_policy_victims(enum vp_policy_kind kind, struct vp_cand *v, size_t n, uint64_t need)
{
    order_victims(kind, v, n);
    uint64_t got = 0;
    size_t k = 0;
    while (k < n && got < need) got += v[k++].bytes;
    return k;
}

int vp_policy_place(uint64_t prev, uint64_t last, uint64_t bytes, uint64_t room, uint64_t cap)
{
    if (bytes > room) return 0;
    int hot = prev && prev < last && last - prev <= VP_HOT_GAP;
    return hot || room - bytes >= cap / 2;
}

uint64_t vp_policy_touch_most(uint64_t cap) { return cap == UINT64_MAX ? UINT64_MAX : cap / 4; }

int vp_policy_keeps_memory(uint64_t total, uint64_t cap) { return cap != UINT64_MAX && total > cap + cap / 4; }

int vp_policy_eviction_futile(uint64_t room_before, uint64_t room_after, uint64_t freed)
{
    return freed && room_after < room_before + freed / 2;
}

enum vp_admit vp_policy_admit(const struct vp_chunk_view *c, int keeps, uint64_t room, uint64_t cap)
{
    if (keeps && c->warm) return VP_ADMIT_FREE;
    int fits = keeps ? vp_policy_place(c->prev, c->last, c->bytes, room, cap) : c->admitted && c->bytes <= room;
    return fits ? VP_ADMIT_ROOM : VP_ADMIT_NO;
}
