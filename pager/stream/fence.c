/* fence.c - the program's operations on streamed memory: each holds the
 * allocations it touches in place (pending while it is issued, then the
 * event recorded after it on the ring until the device has run it), waits
 * for the pieces it needs, and has the pieces left bare mapped first.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "../../common/log.h"
#include "../../common/options.h"
#include "../../common/trace.h"
#include "../../driver/cupti.h"
#include "../../driver/exec.h"
#include "../../driver/query.h"
#include "../../driver/vmm.h"
#include "../../books/account.h"
#include "../../policy/demand.h"
#include "../record.h"
#include "../replay.h"
#include "internal.h"

/* per thread: the allocations of the operation being issued */
static __thread struct {
    struct salloc *a[OPMAX];
    int n, all, on;
    int wide; /* it asked for pieces outside op.a (a graph replay's set) */
    int progress; /* its uses may change the plan: the pager is woken after it */
    uint64_t used; /* a graph replay: bytes of the allocations its set points into */
} op;

/* captures this thread began and has not ended: its operations are
 * recorded into a graph, not run (a replay fences everything) */
static __thread int capturing_here;

int op_on_here(void) { return op.on || fit_here(); }

/* ---- the event ring ---- */

/* Records an event after the operation just issued on stream; returns its
 * serial, or 0 when none could be recorded (the stream was then waited
 * for: the operation is complete). */
static uint64_t record(int dev, CUstream stream)
{
    pthread_mutex_lock(&sp.ring_mu);
    uint64_t s = ++ring.next[dev];
    size_t i = s % RING;
    CUresult rc = CUDA_SUCCESS;
    if (!ring.ev[dev][i]) rc = vp_drv_event_new(&ring.ev[dev][i]);
    /* an event is re-recorded only once the operation it stood for is done */
    else if (ring.serial[dev][i] && vp_drv_query(ring.ev[dev][i]) != CUDA_SUCCESS)
        rc = vp_drv_wait(ring.ev[dev][i]);
    if (rc == CUDA_SUCCESS) rc = vp_drv_record(ring.ev[dev][i], stream);
    ring.serial[dev][i] = rc == CUDA_SUCCESS ? s : 0;
    pthread_mutex_unlock(&sp.ring_mu);
    if (rc == CUDA_SUCCESS) return s;
    vp_drv_sync(stream);
    return 0;
}

/* True when the operation of serial s on dev has completed. */
int done(int dev, uint64_t s)
{
    if (!s) return 1;
    pthread_mutex_lock(&sp.ring_mu);
    size_t i = s % RING;
    int r = ring.serial[dev][i] != s || vp_drv_query(ring.ev[dev][i]) == CUDA_SUCCESS;
    pthread_mutex_unlock(&sp.ring_mu);
    return r;
}

/* Waits until the operation of serial s on dev has completed. */
void wait_done(int dev, uint64_t s)
{
    if (!s) return;
    pthread_mutex_lock(&sp.ring_mu);
    size_t i = s % RING;
    if (ring.serial[dev][i] == s) vp_drv_wait(ring.ev[dev][i]);
    pthread_mutex_unlock(&sp.ring_mu);
}

/* ---- waiting ---- */

static void wait_locked(void) { vp_cond_wait_ns(&sp.pt.done_cv, &sp.pt.mu, 2000000); }

/* No operation on a is being issued or runs on the device. mu held. */
int settled_locked(const struct salloc *a) { return !a->pending && done(a->ev_dev, a->serial); }

/* Nor one on everything (a graph replay). mu held. */
int all_settled_locked(void) { return !sp.global_pending && done(sp.all_dev, sp.all_serial); }

/* Whether operations on dev's streamed memory are being issued or still
 * run on the device: their ends let pieces move. mu held. */
static int ops_in_flight_locked(int dev)
{
    if (!all_settled_locked()) return 1;
    for (size_t i = 0; i < sp.allocs.tab.n; i++)
        if (!TAB(i)->gone && TAB(i)->dev == dev && !settled_locked(TAB(i))) return 1;
    return 0;
}

static int has_moving_locked(void)
{
    if (op.all) return sp.moving_any > 0;
    for (int i = 0; i < op.n; i++)
        if (op.a[i]->busy) return 1;
    return 0;
}

/* The trace's line of the operation being issued (mu held). */
static void trace_op(int dev, uint64_t t, const char *what, double waited_s)
{
    char list[640];
    size_t o = 0;
    list[0] = '\0';
    if (op.all) snprintf(list, sizeof list, "\tall");
    for (int i = 0; i < op.n && !op.all && o + 24 < sizeof list; i++) {
        int w = snprintf(list + o, sizeof list - o, "\t%#llx", (unsigned long long)op.a[i]->base);
        if (w < 0) break;
        o += (size_t)w;
    }
    vp_trace("op", "\t%d\t%llu\t%s\t%llu%s", dev, (unsigned long long)t, what ? what : "?",
             (unsigned long long)(waited_s * 1e6), list);
}

/* A piece an operation may touch (no move of it is under way). */
static void touch(struct piece *p)
{
    if (p->state == P_DEV) p->dirty = 1;
    else p->hashed = 0;
}

/* The operation's allocations, op.a, or every streamed allocation when
 * every is set (op.all: what it may touch; op.wide: what it may have
 * asked pieces of, a graph replay's set naming more than op.a holds). mu
 * held. */
static size_t allocs_n(int every) { return every ? sp.allocs.tab.n : (size_t)op.n; }
static struct salloc *alloc_at(int every, size_t i) { return every ? TAB(i) : op.a[i]; }

/* Maps the host memory of up to 64 bare pieces of the operation's
 * allocations (all of them for op.all), on the calling thread: they are
 * marked moving meanwhile, so neither the pager nor another operation
 * touches them. Returns how many there were. mu held (dropped meanwhile). */
static int map_bare_locked(void)
{
    struct {
        struct salloc *a;
        uint32_t k;
    } b[64];
    int nb = 0;
    for (size_t i = 0; i < allocs_n(op.all) && nb < 64; i++) {
        struct salloc *a = alloc_at(op.all, i);
        for (uint32_t k = 0; k < a->npieces && nb < 64; k++)
            if (a->pc[k].state == P_HOST && a->pc[k].bare) {
                a->pc[k].state = P_MOVING;
                a->busy++;
                b[nb].a = a;
                b[nb++].k = k;
            }
    }
    if (!nb) return 0;
    sp.moving_any++;
    pthread_mutex_unlock(&sp.pt.mu);
    double t0 = now_s();
    /* relaxed: another thread may be capturing in global mode */
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    int swapped = vp_drv_capture_mode(&mode);
    int ok[64];
    for (int j = 0; j < nb; j++) {
        struct salloc *a = b[j].a;
        uint64_t off = piece_off(a, b[j].k), len = piece_len(a, b[j].k);
        ok[j] = vp_drv_map_for(a->base + off, len, a->pc[b[j].k].host, a->dev) == CUDA_SUCCESS;
        if (!ok[j]) {
            driver_error("mapping a piece's host memory", CUDA_ERROR_UNKNOWN, a->dev);
            vp_error("stream: piece at %#llx of device %d could not be mapped; kernels touching it will fault",
                     (unsigned long long)(a->base + off), a->dev);
        }
    }
    if (swapped) vp_drv_capture_mode(&mode);
    uint64_t ns = (uint64_t)((now_s() - t0) * 1e9);
    pthread_mutex_lock(&sp.pt.mu);
    for (int j = 0; j < nb; j++) {
        struct salloc *a = b[j].a;
        struct piece *p = &a->pc[b[j].k];
        p->state = P_HOST;
        p->bare = !ok[j];
        a->busy--;
        count(&sp.ss[a->dev].bare_maps, 1);
        if (vp_trace_on())
            vp_trace("map", "\t%d\t%#llx\t%u\t%llu\t%llu", a->dev, (unsigned long long)a->base, b[j].k,
                     (unsigned long long)piece_len(a, b[j].k), (unsigned long long)(ns / 1000 / (uint64_t)nb));
    }
    count(&sp.ss[b[0].a->dev].bare_map_ns, ns);
    sp.moving_any--;
    pthread_cond_broadcast(&sp.pt.done_cv);
    return nb;
}


/* ---- an operation ---- */

/* The launch being recorded (pager/record.h), per thread; seq: its
 * number, pushed to CUPTI around it (0: none). */
static __thread struct {
    struct vp_record_span s[VP_RECORD_SPANS];
    size_t n;
    uint64_t seq;
} rec;

/* Notes a use at tick t of the pieces the address a + off is taken to
 * touch: they are requested until the operation is issued. Returns 1 when
 * one of them is not resident. mu held. */
static int use_pieces_locked(struct salloc *a, uint64_t off, uint64_t t)
{
    uint64_t first, cnt;
    int want = 0;
    vp_policy_demand_range(a->span, off, a->piece, vp_policy_touch_most(vp_cap_of(a->dev)), &first, &cnt);
    if (rec.n < VP_RECORD_SPANS && (vp_record_on() || vp_replay_on())) rec.s[rec.n++] = (struct vp_record_span){a->order, (uint32_t)first,
                                                                         (uint32_t)(first + cnt - 1)};
    for (uint64_t i = first; i < first + cnt; i++) {
        struct piece *p = &a->pc[i];
        if (p->u.last == t) continue;
        if (vp_uses_note(&p->u, t) && !p->pinned) p->pin_asked = 1;
        /* a use of a piece that is neither pinned nor hot moves its rank
         * (what streams through): the pager plans again after the
         * operation; uses of pinned and hot pieces change nothing it would
         * do, and a loop that fits is not planned at all */
        if (p->pin_asked || (!p->pinned && !is_hot(p))) op.progress = 1;
        /* needed now, until the operation is issued: ranked first, and not
         * sent out meanwhile (its last use already says "later") */
        p->requested = 1;
        if (p->state != P_DEV) {
            count(&sp.ss[a->dev].remote_estimate, piece_len(a, (uint32_t)i));
            want = 1;
        }
    }
    return want;
}

/* Gathers the allocations the operation touches into op (and notes its
 * uses, for a kernel at tick t). Returns 1 when it wants a piece that is
 * not resident. mu held. */
static int gather_locked(const struct vp_op *o, uint64_t t)
{
    int want = 0;
    op.n = 0;
    op.all = o->all;
    op.wide = o->all && o->use;
    op.progress = 0;
    op.used = 0;
    rec.n = 0;
    rec.seq = 0;
    const struct salloc *prev = NULL;
    for (size_t j = 0; j < o->n; j++) {
        struct salloc *a = find_locked(o->ptrs[j]);
        if (!a || a->gone) continue;
        if (o->graph && a != prev) op.used += a->span; /* a set is sorted: an allocation's addresses are neighbours */
        prev = a;
        int seen = 0;
        for (int i = 0; i < op.n; i++) seen |= op.a[i] == a;
        if (!seen) {
            if (op.n == OPMAX) op.all = 1, op.wide = o->use; /* too many to track one by one */
            else op.a[op.n++] = a;
        }
        if (o->use) want |= use_pieces_locked(a, o->ptrs[j] - a->base, t);
    }
    return want;
}

/* Whether a piece the operation asked for is still not resident. mu held. */
static int still_wanted_locked(void)
{
    for (size_t i = 0; i < allocs_n(op.wide); i++) {
        const struct salloc *a = alloc_at(op.wide, i);
        for (uint32_t k = 0; k < a->npieces; k++)
            if (a->pc[k].requested && a->pc[k].state != P_DEV) return 1;
    }
    return 0;
}

/* Waits for the pieces the operation wants to come in (the pager clears
 * requests it will not serve), for as long as the policy says
 * (vp_stream_wait_on). While another thread captures nothing is planned:
 * no piece comes, so the operation does not wait for them (it is still
 * fenced). Sets *timed_out when it went ahead. Returns 1 when it waited.
 * mu held. */
static int wait_for_pieces_locked(int want, double start, int *timed_out)
{
    if (want && !atomic_load(&sp.pt.capturing)) pthread_cond_signal(&sp.pt.work_cv);
    double until = start + VP_STREAM_WAIT_MS / 1000.0;
    int waited = 0, was_busy = 0;
    while (want && !sp.pt.stopping && !atomic_load(&sp.pt.capturing) && still_wanted_locked()) {
        double now = now_s();
        if (now > until) {
            int busy = ops_in_flight_locked(op.a[0]->dev) || sp.moving_any > 0;
            if (!vp_stream_wait_on(now - start, busy, was_busy)) {
                *timed_out = 1;
                break;
            }
            was_busy = busy;
            until = now + VP_STREAM_WAIT_MS / 1000.0;
        }
        waited = 1;
        wait_locked();
    }
    return waited;
}

/* Waits for every move of what the operation touches to end; the pieces
 * left bare get their host memory mapped, and moves that began meanwhile
 * are waited for again. Returns 1 when it waited. mu held. */
static int wait_for_moves_locked(void)
{
    int waited = 0;
    do {
        while (has_moving_locked() && !sp.pt.stopping) {
            waited = 1;
            wait_locked();
        }
    } while (!sp.pt.stopping && map_bare_locked());
    if (op.all && leave_bare_locked()) {
        sp.eager_map = 1;
        vp_log(VP_INFO, "stream: an operation touches every streamed allocation (a graph replay): pieces leaving "
                        "the device get their host memory mapped back from now on");
    }
    return waited;
}

/* The operation holds what it touches: resident pieces are dirty, and the
 * host memory of the others may change under their hashes. mu held. */
static void hold_locked(void)
{
    for (int i = 0; i < op.n; i++) {
        struct salloc *a = op.a[i];
        a->pending++;
        for (uint32_t k = 0; k < a->npieces; k++) touch(&a->pc[k]);
    }
    if (op.all) {
        sp.global_pending++;
        for (size_t i = 0; i < sp.allocs.tab.n; i++)
            for (uint32_t k = 0; k < TAB(i)->npieces; k++) touch(&TAB(i)->pc[k]);
    }
    op.on = 1;
}

static void note_tmaps(const struct vp_op *o)
{
    if (!o->tmaps_known && !o->tmaps_unknown) return;
    int d = vp_drv_current_device();
    if (d < 0 || d >= VP_MAX_DEVICES) d = 0;
    count(&sp.ss[d].tmaps_known, o->tmaps_known);
    count(&sp.ss[d].tmaps_unknown, o->tmaps_unknown);
}

/* The pieces the replay leaves on the host for the launch
 * (pager/replay.h: a stale word's alone with VPAGE_TABLE_LEAVE_STALE, a
 * thin launch's with VPAGE_TABLE_LEAVE_THIN) are not waited for where
 * they are not resident: their host memory is mapped for the launch
 * (wait_for_moves_locked, when they are bare). Correct whatever the
 * kernel reads or writes there, only slower for that launch. mu held. */
static void leave_on_host_locked(void)
{
    const struct vp_replay_piece *s;
    size_t n = vp_replay_left(&s);
    for (size_t j = 0; j < n; j++)
        for (int i = 0; i < op.n; i++) {
            struct salloc *a = op.a[i];
            if (a->order != s[j].order || s[j].piece >= a->npieces) continue;
            struct piece *p = &a->pc[s[j].piece];
            if (!p->requested || p->state != P_HOST) continue;
            p->requested = 0;
            count(s[j].thin ? &sp.ss[a->dev].thin_left : &sp.ss[a->dev].stale_left, 1);
        }
}

/* A kernel launch on streamed memory, to the recorder and the replay
 * (pager/record.h, pager/replay.h): its identity, hashed once. mu held. */
static void note_launch_locked(const char *kernel)
{
    int rec_on = vp_record_on(), replay_on = vp_replay_on(), d = op.a[0]->dev;
    if (!rec_on && !replay_on) return;
    uint64_t kid, id = vp_record_id(kernel, rec.s, rec.n, &kid);
    if (rec_on)
        rec.seq = vp_record_launch(kernel, id, kid, d, rec.s, rec.n,
                                   vp_acct_get(d, VP_KIND_COUNT).cur - vp_acct_get(d, VP_KIND_resident).cur);
    if (vp_replay_launch(id, kid, d, rec.s, rec.n)) op.progress = 1;
    leave_on_host_locked();
}

/* A graph replay whose set points into allocations larger together than
 * dev's cap: what does not fit is read from host memory over the bus at
 * every replay (said once). mu held. */
static void note_graph_over_locked(int dev)
{
    static int said;
    uint64_t cap = vp_cap_of(dev);
    if (op.used <= cap) return;
    count(&sp.ss[dev].graph_over, 1);
    if (said) return;
    said = 1;
    vp_log(VP_WARN, "stream: a CUDA graph replay uses %.2f GiB, more than the cap (%.2f GiB): its kernels read "
                    "what does not fit from host memory over the bus at every replay, which is slow; a larger "
                    "cap, or the program without CUDA graphs, streams it instead",
           (double)op.used / (1 << 30), (double)cap / (1 << 30));
}

int stream_op_begin(const struct vp_op *o)
{
    note_tmaps(o);
    if (!atomic_load_explicit(&sp.allocs.n, memory_order_relaxed) || capturing_here) return 0;
    if (fit_begin()) return 1;
    pthread_mutex_lock(&sp.pt.mu);
    uint64_t t = o->use ? ++sp.tick : sp.tick;
    int want = gather_locked(o, t);
    if (o->use && op.n && !o->graph) note_launch_locked(o->what);
    if (o->graph && op.n) note_graph_over_locked(op.a[0]->dev);
    if (!op.n && !op.all) {
        pthread_mutex_unlock(&sp.pt.mu);
        return 0;
    }
    double start = now_s();
    int timed_out = 0;
    int waited = wait_for_pieces_locked(want, start, &timed_out);
    waited |= wait_for_moves_locked();
    int dev = op.n ? op.a[0]->dev : 0;
    double waited_s = waited ? now_s() - start : 0;
    if (waited) {
        count(&sp.ss[dev].waits, 1);
        count(&sp.ss[dev].wait_ns, (uint64_t)(waited_s * 1e9));
    }
    if (timed_out) count(&sp.ss[dev].wait_timeouts, 1);
    if (vp_trace_on()) trace_op(dev, o->use ? t : 0, o->what, waited_s);
    hold_locked();
    pthread_mutex_unlock(&sp.pt.mu);
    if (rec.seq) vp_cupti_push(rec.seq, o->what);
    return 1;
}

void stream_op_end(CUstream stream, int per_thread)
{
    if (fit_end() || !op.on) return;
    if (rec.seq) {
        vp_cupti_pop();
        rec.seq = 0;
    }
    if (per_thread && !stream) stream = CU_STREAM_PER_THREAD;
    int dev = vp_drv_current_device();
    if (dev < 0 || dev >= VP_MAX_DEVICES) dev = 0;
    uint64_t s = record(dev, stream);
    pthread_mutex_lock(&sp.pt.mu);
    for (int i = 0; i < op.n; i++) {
        struct salloc *a = op.a[i];
        a->pending--;
        a->serial = s;
        a->ev_dev = dev;
    }
    for (size_t i = 0; i < allocs_n(op.wide); i++) { /* served, or gone ahead */
        struct salloc *a = alloc_at(op.wide, i);
        for (uint32_t k = 0; k < a->npieces; k++) a->pc[k].requested = 0;
    }
    if (op.all) {
        sp.global_pending--;
        sp.all_serial = s;
        sp.all_dev = dev;
    }
    if (op.progress || sp.ops_block) pthread_cond_signal(&sp.pt.work_cv);
    op.on = 0;
    op.n = 0;
    pthread_mutex_unlock(&sp.pt.mu);
}

void stream_capture(int delta)
{
    if (delta > 0) capturing_here++;
    else if (capturing_here > 0) capturing_here--;
    vp_pager_thread_capture(&sp.pt, delta);
}

/* The child after fork: no operation of its own is being issued. */
void stream_fence_reset_child(void)
{
    op.n = op.on = op.all = op.wide = 0;
}
