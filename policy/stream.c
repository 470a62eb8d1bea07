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

void vp_stream_rank_piece(const struct vp_piece_view *v, uint64_t now, int ahead, uint8_t *cls, uint64_t *key)
{
    const struct vp_uses *u = &v->u;
    if (!u->visit) { /* placed at its allocation, never used: keeps what nothing else needs */
        *cls = VP_SC_NEXT;
        *key = VP_NEXT_STALE;
    } else if (v->requested) {
        *cls = VP_SC_NOW;
        *key = u->last;
    } else if (!ahead) {
        *cls = VP_SC_NEXT;
        *key = v->on_host ? VP_NEXT_STALE : vp_stream_guess_key(now, u->last);
    } else if (vp_uses_hot(u, now)) {
        *cls = VP_SC_HOT;
        *key = u->last;
    } else if (v->pinned) {
        *cls = VP_SC_PIN;
        *key = v->pin_seq;
    } else {
        /* within a visit (more of its uses are coming), then by the next
         * visit, then what the loop does not predict; last, a piece that
         * came in ahead and left before any use */
        uint64_t next = vp_uses_next(u, now);
        *cls = VP_SC_NEXT;
        *key = vp_uses_visiting(u, now)                    ? now + 1
               : v->on_host && v->ahead_at > u->last       ? VP_NEXT_STALE
               : next >= VP_NEXT_UNKNOWN                   ? vp_stream_guess_key(now, u->last)
                                                           : next;
    }
}

int vp_stream_comes_ahead(int ahead, uint8_t cls, uint64_t key)
{
    return ahead && (cls != VP_SC_NEXT || key < VP_KEY_GUESS);
}

int vp_stream_pin_asked(double *acc, int ahead, int hot, uint64_t bytes, uint64_t pinned, uint64_t room,
                        uint64_t cold)
{
    return ahead && !hot && vp_stream_pin(acc, bytes, pinned, room, cold);
}

uint64_t vp_stream_reserve(uint64_t budget, uint64_t used, uint64_t want, uint64_t piece)
{
    if (used <= budget || !piece) return 0;
    uint64_t r = want < budget / 8 ? want : budget / 8;
    return r / piece * piece;
}

struct vp_stream_split vp_stream_split_budget(const struct vp_stream_census *c)
{
    struct vp_stream_split s;
    uint64_t used = c->hot + c->cold;
    uint64_t over = used > c->budget ? used - c->budget : 0;
    s.window = vp_stream_window(c->budget, c->piece, c->window_want);
    if (over + 4 * c->piece < s.window) s.window = over + 4 * c->piece;
    s.reserve = vp_stream_reserve(c->budget, used, c->reserve_want, c->piece);
    s.keep_free = used <= c->budget ? 0 : s.window + s.reserve;
    s.pin_room = c->budget > c->hot + s.keep_free ? c->budget - c->hot - s.keep_free : 0;
    return s;
}

static int latest_pinned_first(const void *a, const void *b)
{
    const struct vp_pin *x = a, *y = b;
    return x->seq > y->seq ? -1 : x->seq < y->seq;
}

size_t vp_stream_unpins(struct vp_pin *p, size_t n, uint64_t pinned, uint64_t room)
{
    if (pinned <= room) return 0;
    if (n) qsort(p, n, sizeof *p, latest_pinned_first);
    size_t k = 0;
    while (k < n && pinned > room) pinned -= p[k++].bytes;
    return k;
}

int vp_stream_wait_on(double waited_s, int busy, int was_busy)
{
    return waited_s <= VP_STREAM_WAIT_MAX_MS / 1000.0 && (busy || was_busy);
}
