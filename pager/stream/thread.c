/* thread.c - the stream pager's thread: reclaims first, then a plan and a
 * round of moves at a time, the copies of one round running while the
 * previous round is remapped (its out-moves before the plan, so that it
 * has their room; its in-moves after); it sleeps when a plan has nothing
 * to do.
 */
#define _GNU_SOURCE
#include <string.h>

#include "../../books/account.h"
#include "../../common/options.h"
#include "../../common/trace.h"
#include "../../driver/exec.h"
#include "internal.h"

/* Up to 64 resident pieces of dev that may leave now (no operation on
 * their allocation issued or in flight), marked moving, into m. mu held
 * (dropped to ask the events). */
static size_t reclaimable_locked(int dev, struct move *m)
{
    size_t nm = 0;
    for (size_t i = 0; i < sp.allocs.tab.n && nm < 64; i++) {
        struct salloc *a = TAB(i);
        if (a->dev != dev || a->gone || a->pending || sp.global_pending) continue;
        pthread_mutex_unlock(&sp.pt.mu);
        int ok = done(a->ev_dev, a->serial) && done(sp.all_dev, sp.all_serial);
        pthread_mutex_lock(&sp.pt.mu);
        if (!ok || a->gone || a->pending) continue;
        for (uint32_t k = 0; k < a->npieces && nm < 64; k++)
            if (a->pc[k].state == P_DEV) {
                a->pc[k].state = P_MOVING;
                a->busy++;
                m[nm++] = (struct move){.a = a, .i = k, .out = 1, .slot = a->pc[k].slot, .bare = leave_bare_locked()};
            }
    }
    return nm;
}

/* Sends out resident pieces of dev until want bytes are free under the
 * cap or nothing more can leave. mu held. */
static void reclaim_locked(int dev, uint64_t want)
{
    count(&sp.ss[dev].reclaims, 1);
    for (;;) {
        pthread_mutex_unlock(&sp.pt.mu);
        release_free_slots(dev);
        pthread_mutex_lock(&sp.pt.mu);
        if (vp_acct_room(dev) >= want) return;
        struct move m[64];
        size_t nm = reclaimable_locked(dev, m);
        if (!nm) return;
        sp.moving_any++;
        pthread_mutex_unlock(&sp.pt.mu);
        make_moves(dev, m, nm);
        pthread_mutex_lock(&sp.pt.mu);
        finish_locked(dev, m, nm);
    }
}

/* Serves the reclaims asked of the thread, after the round in flight. */
static void reclaims_locked(struct round *in_flight)
{
    if (!vp_pager_thread_reclaim_asked_locked(&sp.pt)) return;
    round_flush_locked(in_flight);
    for (int d = 0; d < VP_MAX_DEVICES; d++)
        if (sp.pt.reclaim_want[d]) {
            uint64_t w = sp.pt.reclaim_want[d];
            sp.pt.reclaim_want[d] = 0;
            reclaim_locked(d, w);
        }
    vp_pager_thread_reclaimed_locked(&sp.pt);
}

/* Round slot k's hash buffer, made the first time (a device is current). */
static uint64_t *hash_buffer(int k)
{
    void *p = NULL;
    if (!sp.round_hbuf[k] && vp_opt.stream_hash &&
        vp_drv_host_alloc(&p, ROUND_MOVES * HSTRIDE * sizeof(uint64_t)) == CUDA_SUCCESS)
        sp.round_hbuf[k] = p;
    return sp.round_hbuf[k];
}

/* Waits for round r's copies, remaps and ends it (what its out-moves
 * left, when they ended ahead). mu held. */
void round_flush_locked(struct round *r)
{
    if (!r->live) return;
    size_t k = r->out_done ? r->nout : 0;
    CUevent ev[3] = {r->ev[0], k ? NULL : r->ev[1], k ? NULL : r->ev[2]};
    pthread_mutex_unlock(&sp.pt.mu);
    remap(r->dev, r->m + k, r->n - k, ev, r->rc, r->hbuf ? r->hbuf + k * HSTRIDE : NULL, "round");
    pthread_mutex_lock(&sp.pt.mu);
    finish_locked(r->dev, r->m + k, r->n - k);
    r->live = 0;
    stream_check_locked("a round");
}

/* Ends round r's out-moves ahead of its in-moves (VPAGE_STREAM_FREE_EARLY):
 * waits for their hashes and copies back (not for the copies in), remaps
 * them and gives their slots back, so that the next plan has their room.
 * mu held. */
static void round_flush_out_locked(struct round *r)
{
    if (!r->live || r->out_done || !r->nout) return;
    CUevent ev[3] = {NULL, r->ev[1], r->ev[2]};
    pthread_mutex_unlock(&sp.pt.mu);
    remap(r->dev, r->m, r->nout, ev, r->rc, r->hbuf, "freed");
    pthread_mutex_lock(&sp.pt.mu);
    finish_moves_locked(r->dev, r->m, r->nout);
    r->out_done = 1;
    stream_check_locked("a round's out-moves");
}

/* Puts round r's out-moves first, each direction in the order planned;
 * counts them. Pager thread. */
static void out_first(struct round *r)
{
    static struct move in[ROUND_MOVES];
    size_t nin = 0, nout = 0;
    for (size_t j = 0; j < r->n; j++) {
        if (r->m[j].out) r->m[nout++] = r->m[j];
        else in[nin++] = r->m[j];
    }
    memcpy(r->m + nout, in, nin * sizeof *in);
    r->nout = nout;
    r->out_done = 0;
}

/* Plans round r on one device (the one of prev when prev is in flight:
 * one device at a time). mu held. */
static void plan_round_locked(struct round *r, const struct round *prev, int *blocked)
{
    for (int d = 0; d < VP_MAX_DEVICES && !r->n && !sp.pt.stopping; d++) {
        if (prev->live && prev->dev != d) continue;
        double p0 = now_s();
        r->n = plan_locked(d, r->m, sizeof r->m / sizeof *r->m, blocked);
        r->dev = d;
        if (atomic_load_explicit(&sp.ss[d].streamed, memory_order_relaxed)) {
            count(&sp.ss[d].plans, 1);
            count(&sp.ss[d].plan_ns, (uint64_t)((now_s() - p0) * 1e9));
        }
    }
}

/* Issues the copies of round r, in round slot `slot`. mu held (dropped). */
static void issue_round_locked(struct round *r, int slot)
{
    int d = r->dev;
    sp.moving_any++;
    pthread_mutex_unlock(&sp.pt.mu);
    for (int k = 0; k < 3; k++) {
        if (!sp.round_ev[d][slot][k] && use_device(d) == 0) vp_drv_event_new(&sp.round_ev[d][slot][k]);
        r->ev[k] = sp.round_ev[d][slot][k];
    }
    r->hbuf = use_device(d) == 0 ? hash_buffer(slot) : NULL;
    out_first(r);
    r->rc = issue_copies(d, r->m, r->n, r->ev, r->hbuf);
    if (r->rc == 0 && vp_opt.stream_map_early) map_ins_early(d, r->m + r->nout, r->n - r->nout);
    pthread_mutex_lock(&sp.pt.mu);
    r->live = 1;
}

static void *pager_main(void *arg)
{
    (void)arg;
    vp_pager_thread_enter();
    int cur = 0;
    pthread_mutex_lock(&sp.pt.mu);
    while (!sp.pt.stopping) {
        struct round *r = &rounds[cur], *prev = &rounds[cur ^ 1];
        fit_pager_turn_locked();
        reclaims_locked(prev);
        if (vp_opt.stream_free_early) round_flush_out_locked(prev);
        int blocked = 0;
        /* while a stream is captured nothing new is planned (the capturing
         * thread's operations are not seen); a round in flight is finished,
         * so that other threads' operations waiting for its moves go on
         * (this thread is in relaxed capture mode: its synchronisations
         * and remaps neither fail nor invalidate the capture) */
        r->n = 0;
        sp.ops_block = 0;
        if (!atomic_load(&sp.pt.capturing)) plan_round_locked(r, prev, &blocked);
        if (r->n) issue_round_locked(r, cur);
        int had_prev = prev->live;
        round_flush_locked(prev);
        if (r->live) {
            cur ^= 1;
            continue;
        }
        if (had_prev || sp.pt.stopping) continue;
        if (!blocked) fit_try_enter_locked();
        double w0 = now_s();
        vp_cond_wait_ns(&sp.pt.work_cv, &sp.pt.mu, blocked ? 500000 : 50000000);
        if (vp_trace_on()) vp_trace("idle", "\t%d\t%llu", blocked, (unsigned long long)((now_s() - w0) * 1e6));
    }
    round_flush_locked(&rounds[cur ^ 1]);
    pthread_mutex_unlock(&sp.pt.mu);
    return NULL;
}

int stream_start_locked(void)
{
    sp.pool.want = (int)vp_opt.stream_threads;
    sp.pool.enter = vp_pager_thread_enter;
    return vp_pager_thread_start_locked(&sp.pt, pager_main, "vpage-stream",
                                        "stream: cannot start the pager thread; allocations are not streamed");
}
