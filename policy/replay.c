/* replay.c - see replay.h. */
#include "replay.h"

#include <stdlib.h>

#include "stream.h"

void vp_replay_index(const struct vp_step *s, uint32_t *start, uint32_t *ops)
{
    for (size_t x = 0; x <= s->npieces; x++) start[x] = 0;
    for (size_t i = 0; i < s->nops; i++)
        for (uint32_t j = 0; j < s->ops[i].n; j++) start[s->touch[s->ops[i].first + j] + 1]++;
    for (size_t x = 0; x < s->npieces; x++) start[x + 1] += start[x];
    /* filled in op order: each piece's uses come out ascending; start[x]
     * runs ahead while filling and is put back after */
    for (size_t i = 0; i < s->nops; i++)
        for (uint32_t j = 0; j < s->ops[i].n; j++) ops[start[s->touch[s->ops[i].first + j]]++] = (uint32_t)i;
    for (size_t x = s->npieces; x > 0; x--) start[x] = start[x - 1];
    start[0] = 0;
}

uint32_t vp_replay_next(const uint32_t *u, uint32_t n, uint32_t nops, uint32_t at)
{
    if (!n) return VP_REPLAY_NEVER;
    uint32_t lo = 0, hi = n; /* the first use >= at */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (u[mid] < at) lo = mid + 1;
        else hi = mid;
    }
    return lo < n ? u[lo] - at : nops - at + u[0];
}

uint32_t vp_replay_visits(const uint32_t *u, uint32_t n, uint32_t nops, uint32_t gap)
{
    if (!n) return 0;
    uint32_t v = nops - u[n - 1] + u[0] > gap; /* the first use starts one, around the loop */
    for (uint32_t j = 1; j < n; j++) v += u[j] - u[j - 1] > gap;
    return v ? v : 1;
}

uint64_t vp_replay_window(const struct vp_step *s, uint64_t budget, uint64_t piece, uint64_t want)
{
    uint64_t most = 0;
    for (size_t i = 0; i < s->nops; i++) {
        uint64_t b = 0;
        for (uint32_t j = 0; j < s->ops[i].n; j++) b += s->bytes[s->touch[s->ops[i].first + j]];
        if (b > most) most = b;
    }
    uint64_t w = want ? want : 2 * most;
    if (w < 4 * piece) w = 4 * piece;
    return w < budget ? w : budget;
}

struct cand {
    uint32_t x, visits, first;
};

static int most_visits_first(const void *a, const void *b)
{
    const struct cand *p = a, *q = b;
    if (p->visits != q->visits) return p->visits > q->visits ? -1 : 1;
    if (p->first != q->first) return p->first < q->first ? -1 : 1;
    return p->x < q->x ? -1 : p->x > q->x;
}

/* Pins c[0..n) in order while they fit room; the group of equal visits
 * that does not fit whole gets its share, spread. Returns bytes pinned. */
static uint64_t pin_groups(const struct vp_step *s, const struct cand *c, size_t n, uint64_t room, uint32_t *rank)
{
    uint64_t pinned = 0;
    uint32_t next = 1;
    for (size_t g = 0; g < n;) {
        size_t e = g;
        uint64_t bytes = 0;
        for (; e < n && c[e].visits == c[g].visits; e++) bytes += s->bytes[c[e].x];
        double share = bytes <= room - pinned ? 1.0 : (double)(room - pinned) / (double)bytes, acc = 0;
        for (size_t j = g; j < e; j++) {
            uint64_t b = s->bytes[c[j].x];
            acc += (double)b * share;
            if (acc + 0.5 < (double)b || b > room - pinned) continue;
            acc -= (double)b;
            rank[c[j].x] = next++;
            pinned += b;
        }
        if (share < 1.0) break;
        g = e;
    }
    return pinned;
}

uint64_t vp_replay_pins(const struct vp_step *s, const uint32_t *start, const uint32_t *ops, uint64_t budget,
                        uint64_t window, uint32_t gap, uint32_t *rank)
{
    struct cand *c = malloc((s->npieces ? s->npieces : 1) * sizeof *c);
    for (size_t x = 0; x < s->npieces; x++) rank[x] = 0;
    if (!c) return UINT64_MAX;
    size_t n = 0;
    uint64_t touched = 0;
    for (size_t x = 0; x < s->npieces; x++) {
        uint32_t k = start[x + 1] - start[x];
        if (!k) continue;
        c[n++] = (struct cand){(uint32_t)x, vp_replay_visits(ops + start[x], k, (uint32_t)s->nops, gap),
                               ops[start[x]]};
        touched += s->bytes[x];
    }
    qsort(c, n, sizeof *c, most_visits_first);
    uint64_t room = touched <= budget ? budget : budget > window ? budget - window : 0;
    uint64_t pinned = pin_groups(s, c, n, room, rank);
    free(c);
    return pinned;
}

void vp_replay_rank(uint32_t rank, uint32_t dist, uint64_t now, uint8_t *cls, uint64_t *key)
{
    if (rank) {
        *cls = VP_SC_PIN;
        *key = rank;
    } else {
        *cls = VP_SC_NEXT;
        *key = now + 1 + (dist == VP_REPLAY_NEVER ? VP_KEY_GUESS : dist);
    }
}
