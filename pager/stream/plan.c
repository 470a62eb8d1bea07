/* plan.c - one plan of the stream pager for a device: it counts the
 * device's pieces, lets the policy divide the budget, pin, rank and pick
 * the wanted set (policy/stream.h), and turns what differs from the
 * device's state into moves that can be made now.
 *
 * All under mu: the program's launches wait for it meanwhile, so a plan
 * asks the events only for the allocations of candidate moves, each at
 * most once (may_move_locked).
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "../../books/account.h"
#include "../../common/options.h"
#include "../../common/trace.h"
#include "../replay.h"
#include "internal.h"

/* What one plan of a device works with. */
struct plan {
    int dev;
    uint64_t budget, held, piece;
    uint64_t hot, cold, pinned; /* bytes of used pieces: hot, the others, pinned */
    size_t used, placed, all;   /* pieces used; resident and never used; all */
    struct vp_stream_split split;
    struct vp_spc *c;           /* the candidates, ranked */
    struct move *refs;          /* what each candidate stands for */
    uint64_t *when;             /* per ref: the tick of its next use where the replay knows it, else UINT64_MAX */
    size_t n;
};

/* The budget of pieces on dev: the cap less everything counted that is
 * not a slot (books/account.h), kept clear of overflow without a cap. */
static uint64_t budget_of(int dev)
{
    uint64_t b = vp_acct_budget(dev);
    return b > UINT64_MAX / 4 ? UINT64_MAX / 4 : b;
}

/* Whether a's pieces may move now: no operation on it (or on everything)
 * is being issued or in flight. Asks the events once a plan; an
 * allocation held up by operations makes their ends wake the pager. */
static int may_move_locked(struct salloc *a)
{
    if (a->still < 0) {
        if (sp.quiet < 0) sp.quiet = all_settled_locked();
        a->still = sp.quiet && !a->busy && settled_locked(a);
        if (!a->still && !a->busy) sp.ops_block = 1;
    }
    return a->still;
}

/* Counts dev's pieces into pl. */
static void census_locked(struct plan *pl)
{
    for (size_t i = 0; i < sp.allocs.tab.n; i++) {
        struct salloc *a = TAB(i);
        if (a->dev != pl->dev || a->gone) continue;
        pl->piece = a->piece;
        pl->all += a->npieces;
        for (uint32_t k = 0; k < a->npieces; k++) {
            struct piece *p = &a->pc[k];
            uint64_t len = piece_len(a, k);
            if (p->state != P_HOST) pl->held += len;
            if (!p->u.visit) {
                pl->placed += p->state == P_DEV;
                continue;
            }
            pl->used++;
            if (is_hot(p)) pl->hot += len;
            else pl->cold += len;
            if (p->pinned) pl->pinned += len;
        }
    }
}

/* Hot pieces came to need the room: the policy picks the pinned pieces
 * that are unpinned (the latest pinned). */
static void unpin_locked(struct plan *pl)
{
    struct vp_pin *v = malloc((pl->used ? pl->used : 1) * sizeof *v);
    struct move *at = malloc((pl->used ? pl->used : 1) * sizeof *at);
    size_t n = 0;
    for (size_t i = 0; v && at && i < sp.allocs.tab.n; i++)
        for (uint32_t k = 0; TAB(i)->dev == pl->dev && !TAB(i)->gone && k < TAB(i)->npieces; k++)
            if (TAB(i)->pc[k].pinned) {
                at[n] = (struct move){.a = TAB(i), .i = k};
                v[n] = (struct vp_pin){TAB(i)->pc[k].pin_seq, piece_len(TAB(i), k), &at[n]};
                n++;
            }
    size_t k = v && at ? vp_stream_unpins(v, n, pl->pinned, pl->split.pin_room) : 0;
    for (size_t j = 0; j < k; j++) {
        struct move *r = v[j].ref;
        r->a->pc[r->i].pinned = 0;
        if (vp_trace_on())
            vp_trace("unpin", "\t%d\t%#llx\t%u\t%llu", pl->dev, (unsigned long long)r->a->base, r->i,
                     (unsigned long long)v[j].bytes);
        pl->pinned -= v[j].bytes;
        uncount(&sp.ss[pl->dev].pinned, v[j].bytes);
    }
    free(v);
    free(at);
}

/* A piece whose long reuse gap was seen since the last plan: the policy
 * says whether it is pinned. */
static void pin_asked_locked(struct plan *pl, struct salloc *a, uint32_t k)
{
    struct piece *p = &a->pc[k];
    uint64_t len = piece_len(a, k);
    p->pin_asked = 0;
    if (!vp_stream_pin_asked(&sp.pin_acc[pl->dev], vp_opt.stream_ahead, is_hot(p), len, pl->pinned,
                             pl->split.pin_room, pl->cold))
        return;
    p->pinned = 1;
    p->pin_seq = ++sp.pin_next;
    pl->pinned += len;
    count(&sp.ss[pl->dev].pinned, len);
    if (vp_trace_on())
        vp_trace("pin", "\t%d\t%#llx\t%u\t%llu", pl->dev, (unsigned long long)a->base, k, (unsigned long long)len);
}

/* The class and key of piece k of a: the replayed table's (pager/replay.h)
 * when it ranks the piece and no operation being issued asks for it, else
 * the online policy's. Returns 0 when the piece is no candidate (never
 * used, not resident, not in the table's step). */
static int rank_locked(struct plan *pl, struct salloc *a, uint32_t k, uint8_t *cls, uint64_t *key, uint64_t *when)
{
    struct piece *p = &a->pc[k];
    *when = UINT64_MAX;
    int table = vp_opt.stream_ahead && !p->requested &&
                vp_replay_rank_piece(a->order, k, a->dev, sp.tick, cls, key, when);
    if (table) return 1;
    if (!p->u.visit && p->state != P_DEV) return 0;
    if (p->pin_asked && !p->pinned) pin_asked_locked(pl, a, k);
    struct vp_piece_view v = {p->u, p->ahead_at, p->pin_seq, p->requested, p->pinned, p->state == P_HOST};
    vp_stream_rank_piece(&v, sp.tick, vp_opt.stream_ahead, cls, key);
    return 1;
}

/* One candidate per piece that is used, placed and resident, or in the
 * replayed table's step, ranked. Returns -1 when out of host memory. */
static int candidates_locked(struct plan *pl)
{
    size_t most = pl->all;
    pl->c = malloc((most ? most : 1) * sizeof *pl->c);
    pl->refs = malloc((most ? most : 1) * sizeof *pl->refs);
    pl->when = malloc((most ? most : 1) * sizeof *pl->when);
    if (!pl->c || !pl->refs || !pl->when) return -1;
    for (size_t i = 0; i < sp.allocs.tab.n; i++) {
        struct salloc *a = TAB(i);
        if (a->dev != pl->dev || a->gone) continue;
        for (uint32_t k = 0; k < a->npieces; k++) {
            struct vp_spc *c = &pl->c[pl->n];
            *c = (struct vp_spc){.bytes = piece_len(a, k), .ref = &pl->refs[pl->n]};
            if (!rank_locked(pl, a, k, &c->cls, &c->key, &pl->when[pl->n])) continue;
            pl->refs[pl->n++] = (struct move){.a = a, .i = k};
        }
    }
    return 0;
}

/* Out-moves: resident and not wanted, latest next use first (the end of
 * the ranking). Returns how many were added to m. */
static size_t outs_locked(struct plan *pl, struct move *m, size_t mmax, int *blocked)
{
    size_t nm = 0;
    uint64_t bytes = 0;
    for (size_t j = pl->n; j-- > 0 && nm < mmax && bytes < ROUND_BYTES;) {
        struct move *r = pl->c[j].ref;
        struct piece *p = &r->a->pc[r->i];
        if (pl->c[j].want || p->state != P_DEV) continue;
        if (!may_move_locked(r->a)) {
            *blocked |= 1;
            continue;
        }
        m[nm++] = (struct move){.a = r->a, .i = r->i, .out = 1, .slot = p->slot, .bare = leave_bare_locked()};
        p->state = P_MOVING;
        bytes += pl->c[j].bytes;
    }
    return nm;
}

/* The order in-moves are taken in: what an operation asks for first,
 * then by the replayed table's next use, then by rank. */
static const struct plan *order_of;
static int in_order(const void *x, const void *y)
{
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    const struct move *ri = order_of->c[i].ref, *rj = order_of->c[j].ref;
    int qi = !ri->a->pc[ri->i].requested, qj = !rj->a->pc[rj->i].requested;
    uint64_t wi = order_of->when[ri - order_of->refs], wj = order_of->when[rj - order_of->refs];
    if (qi != qj) return qi - qj;
    if (wi != wj) return wi < wj ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* The candidates that would come in now: wanted, on the host, and asked
 * for or coming ahead (the policy's rule), into at[]; in the order they
 * are taken in. Returns how many. */
static size_t ins_wanted_locked(struct plan *pl, size_t *at)
{
    size_t n = 0;
    for (size_t j = 0; j < pl->n; j++) {
        struct move *r = pl->c[j].ref;
        struct piece *p = &r->a->pc[r->i];
        if (!pl->c[j].want) {
            p->requested = 0; /* not served: the launch need not wait */
            continue;
        }
        int ahead = vp_stream_comes_ahead(vp_opt.stream_ahead, pl->c[j].cls, pl->c[j].key);
        if (p->state == P_HOST && (p->requested || ahead)) at[n++] = j;
    }
    order_of = pl; /* mu held: one plan at a time */
    if (n > 1 && vp_replay_found(pl->dev)) qsort(at, n, sizeof *at, in_order);
    return n;
}

/* In-moves: wanted and not resident, in order (ins_wanted_locked), while
 * there is room (what goes out now makes room for the next round); ahead
 * of use only what the policy says comes ahead. Returns how many were
 * added to m. */
static size_t ins_locked(struct plan *pl, struct move *m, size_t mmax, int *blocked)
{
    uint64_t room = pl->budget > pl->held ? pl->budget - pl->held : 0, bytes = 0;
    size_t nm = 0, *at = malloc((pl->n ? pl->n : 1) * sizeof *at);
    size_t n = at ? ins_wanted_locked(pl, at) : 0;
    for (size_t q = 0; q < n && nm < mmax && bytes < ROUND_BYTES; q++) {
        size_t j = at[q];
        struct move *r = pl->c[j].ref;
        struct piece *p = &r->a->pc[r->i];
        if (pl->c[j].bytes > room) {
            *blocked |= 2;
            break;
        }
        if (!may_move_locked(r->a)) {
            *blocked |= 1;
            continue;
        }
        m[nm++] = (struct move){.a = r->a, .i = r->i, .bare = p->bare};
        p->ahead = !p->requested;
        if (p->ahead) {
            p->ahead_at = sp.tick;
            p->ahead_cls = pl->c[j].cls;
        }
        p->state = P_MOVING;
        room -= pl->c[j].bytes;
        bytes += pl->c[j].bytes;
    }
    free(at);
    return nm;
}

size_t plan_locked(int dev, struct move *m, size_t mmax, int *blocked)
{
    struct plan pl = {.dev = dev};
    census_locked(&pl);
    if (!pl.used && !vp_replay_found(dev)) return 0;
    pl.budget = budget_of(dev);
    /* the reserve only where pieces come ahead of use; a replayed step's
     * pieces not used yet count, so that its pins do not change as they are */
    uint64_t step = vp_replay_step_bytes(dev), seen = pl.hot + pl.cold;
    struct vp_stream_census cs = {pl.budget, pl.piece, pl.hot, step > seen ? pl.cold + step - seen : pl.cold,
                                  vp_opt.stream_window, vp_opt.stream_ahead ? vp_opt.stream_reserve : 0};
    pl.split = vp_stream_split_budget(&cs);
    vp_replay_budget(dev, pl.budget - pl.split.reserve); /* the replay's pins leave the reserve too */
    if (pl.pinned > pl.split.pin_room) unpin_locked(&pl);
    size_t nm = 0;
    if (candidates_locked(&pl) == 0) {
        sp.quiet = -1;
        for (size_t i = 0; i < sp.allocs.tab.n; i++) TAB(i)->still = -1;
        /* the wanted set is ranked on the whole budget (less the reserve,
         * policy/stream.h), so that it does not change as operations come
         * and go; pieces that cannot move yet are skipped (they hold their
         * room until they can); pieces come in within the whole budget */
        vp_stream_desire(pl.c, pl.n, pl.budget - pl.split.reserve);
        int here = 0; /* this plan's (*blocked gathers every device's) */
        nm = outs_locked(&pl, m, mmax, &here);
        nm += ins_locked(&pl, m + nm, mmax - nm, &here);
        if (here & 2) count(&sp.ss[dev].room_waits, 1);
        *blocked |= here;
        for (size_t j = 0; j < nm; j++) m[j].a->busy++;
    }
    free(pl.c);
    free(pl.refs);
    free(pl.when);
    if (nm && vp_trace_on())
        vp_trace("plan", "\t%d\t%llu\t%llu\t%llu\t%llu\t%llu", dev, (unsigned long long)pl.budget,
                 (unsigned long long)pl.hot, (unsigned long long)pl.cold, (unsigned long long)pl.pinned,
                 (unsigned long long)pl.split.keep_free);
    return nm;
}
