/* thread.c - the demand pager's thread: it serves the launches' requests
 * (room made by eviction as the policy says, chunks let in and
 * prefetched) and the reclaims of unpageable memory, on a stream of its
 * own per device; it keeps the device's own view of its room.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "../../books/account.h"
#include "../../books/weights.h"
#include "../../common/log.h"
#include "../../driver/alloc.h"
#include "../../driver/exec.h"
#include "internal.h"

static enum vp_policy_kind policy(void)
{
    return vp_opt.policy == VP_POLICY_OPT_LOOP ? VP_POLICY_LOOP : VP_POLICY_LRU;
}

/* Makes dev's primary context current on the pager thread, with a stream
 * of the pager's own. Returns 0, or -1. */
static int use_device(int dev)
{
    if (dev == dp.ctx_dev) return 0;
    if (vp_drv_use_primary_ctx(&dp.ctx[dev], dev)) return -1;
    if (!dp.stream[dev] && vp_drv_stream_new(&dp.stream[dev], 0) != CUDA_SUCCESS) {
        dp.stream[dev] = NULL;
        return -1;
    }
    dp.ctx_dev = dev;
    return 0;
}

static CUresult prefetch(CUdeviceptr a, uint64_t n, int dev, int to_device)
{
    count(&dp.ps[dev].prefetch_calls, 1);
    return vp_drv_prefetch(a, n, dev, !to_device, dp.stream[dev]);
}

CUresult demand_advise(CUdeviceptr a, uint64_t n, CUmem_advise what, int dev) { return vp_drv_advise(a, n, what, dev, 0); }

struct cand_ref {
    struct paged *p;
    uint32_t ci;
};

/* Resident chunks of dev not used at or after protect, as candidates for
 * the policy; *refs holds what their .ref point at (free both). */
static size_t residents_locked(int dev, uint64_t protect, struct vp_cand **out, struct cand_ref **refs)
{
    size_t n = 0, capn = 0;
    *out = NULL;
    *refs = NULL;
    for (size_t i = 0; i < dp.allocs.tab.n; i++)
        if (TAB(i)->dev == dev && !TAB(i)->gone) capn += TAB(i)->nchunks;
    if (!capn) return 0;
    struct vp_cand *c = malloc(capn * sizeof *c);
    struct cand_ref *r = malloc(capn * sizeof *r);
    if (!c || !r) {
        free(c);
        free(r);
        return 0;
    }
    for (size_t i = 0; i < dp.allocs.tab.n; i++) {
        struct paged *p = TAB(i);
        if (p->dev != dev || p->gone) continue;
        for (uint32_t ci = 0; ci < p->nchunks; ci++) {
            struct chunk *ch = &p->ch[ci];
            if (ch->state != C_IN || ch->last_use >= protect) continue;
            r[n] = (struct cand_ref){p, ci};
            c[n] = (struct vp_cand){vp_policy_next_use(ch->prev_use, ch->last_use, dp.tick), ch->last_use,
                                    chunk_bytes(p, ci), &r[n], 0};
            n++;
        }
    }
    *out = c;
    *refs = r;
    return n;
}

/* Evicts the chunks behind c[0..k) from dev, waits for the evictions to
 * complete, then releases their bytes. Returns the bytes freed. */
static uint64_t evict_locked(int dev, struct vp_cand *c, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        struct cand_ref *v = c[j].ref;
        v->p->ch[v->ci].state = C_OUT;
        v->p->busy++;
    }
    pthread_mutex_unlock(&dp.pt.mu);

    int ok = use_device(dev) == 0;
    for (size_t j = 0; ok && j < k; j++) {
        struct cand_ref *v = c[j].ref;
        struct chunk *ch = &v->p->ch[v->ci];
        CUdeviceptr a = chunk_addr(v->p, v->ci);
        CUresult rc = CUDA_SUCCESS;
        /* A duplicate is dropped by taking read-mostly off (the host copy
         * is valid); the prefetch after it moves only pages written since. */
        if (ch->dup) rc = demand_advise(a, c[j].bytes, CU_MEM_ADVISE_UNSET_READ_MOSTLY, dev);
        if (rc == CUDA_SUCCESS) rc = prefetch(a, c[j].bytes, dev, 0);
        if (rc != CUDA_SUCCESS) driver_error("eviction", rc, dev);
    }
    if (ok && k) ok = vp_drv_sync(dp.stream[dev]) == CUDA_SUCCESS;
    if (!ok) driver_error("waiting for evictions", CUDA_ERROR_UNKNOWN, dev);

    pthread_mutex_lock(&dp.pt.mu);
    uint64_t freed = 0;
    for (size_t j = 0; j < k; j++) {
        struct cand_ref *v = c[j].ref;
        struct chunk *ch = &v->p->ch[v->ci];
        v->p->busy--;
        if (!ok) { /* cannot tell where the bytes are: they stay counted */
            ch->state = C_IN;
            continue;
        }
        count(ch->dup ? &dp.ps[dev].bytes_collapsed : &dp.ps[dev].bytes_writeback, c[j].bytes);
        count(&dp.ps[dev].evictions, 1);
        ch->state = C_HOST;
        ch->dup = 0;
        vp_acct_release(dev, VP_KIND_resident, c[j].bytes);
        freed += c[j].bytes;
    }
    pthread_cond_broadcast(&dp.pt.done_cv);
    return freed;
}

/* Room under the cap as the device itself sees it. The UVM driver keeps
 * the physical memory of chunks that were evicted, and its use grows with
 * the bytes moved (measured on the H100: the paging results in bench/results), so
 * device use can pass the cap while vpage's books do not. Growth of the
 * device's own use since the pager's first batch that the books do not
 * explain is taken off the room: the pager stops letting chunks in rather
 * than let the device pass the cap. Pager thread, mu held on entry and
 * exit, dropped around the driver calls (the caller must hold no pointer
 * into the table that a free could invalidate meanwhile, other than
 * chunks it marked busy). */
static uint64_t room_seen_by_device(int dev)
{
    size_t f = 0, t = 0;
    pthread_mutex_unlock(&dp.pt.mu);
    int ok = use_device(dev) == 0 && vp_drv_mem_info(&f, &t) == CUDA_SUCCESS && f <= t;
    pthread_mutex_lock(&dp.pt.mu);
    uint64_t room = vp_acct_room(dev);
    if (!ok) return room;
    uint64_t used = t - f, counted = vp_acct_get(dev, VP_KIND_COUNT).cur;
    if (!dp.have_start[dev]) {
        dp.start_used[dev] = used;
        dp.start_counted[dev] = counted;
        dp.have_start[dev] = 1;
        uint64_t cap = vp_cap_of(dev);
        if (vp_policy_keeps_memory(t, cap)) {
            /* the driver would keep the memory of every chunk ever let in
             * (bench/probes/uvm_keep.c): place chunks once instead */
            dp.keeps[dev] = 1;
            atomic_store(&dp.ps[dev].evictions_stopped, 1);
            char a[32], b[32];
            vp_log(VP_INFO, "pager: device %d has %s, the cap is %s: the UVM driver keeps the memory of evicted "
                   "chunks, so chunks are placed once (those in hot use first) and not evicted", dev,
                   vp_fmt_bytes(t, a, sizeof a), vp_fmt_bytes(cap, b, sizeof b));
        }
        return room;
    }
    int64_t extra = (int64_t)(used - dp.start_used[dev]) - ((int64_t)counted - (int64_t)dp.start_counted[dev]);
    if (extra <= 0) return room;
    vp_gauge_move(&dp.ps[dev].unbooked_peak, (uint64_t)extra, 1);
    return room > (uint64_t)extra ? room - (uint64_t)extra : 0;
}

/* Whether a chunk comes in as a read-mostly duplicate: it is wholly a clean
 * copy of weight-file bytes and VPAGE_CLEAN_EVICT=collapse. */
static int as_duplicate(const struct paged *p, uint32_t ci)
{
    uint64_t len = chunk_bytes(p, ci);
    return vp_opt.clean_evict == VP_EVICT_COLLAPSE && vp_weights_clean_bytes(chunk_addr(p, ci), len) == len;
}

/* Issues the prefetches of b[0..n) (state IN, room reserved), mu held on
 * entry and exit; drops the busy marks. */
static void issue_in_locked(struct req *b, size_t n)
{
    pthread_mutex_unlock(&dp.pt.mu);
    for (size_t i = 0; i < n;) {
        struct paged *p = b[i].p;
        int dev = p->dev;
        CUdeviceptr a = chunk_addr(p, b[i].ci);
        uint64_t len = chunk_bytes(p, b[i].ci);
        int dup = as_duplicate(p, b[i].ci);
        size_t j = i + 1; /* neighbouring chunks of one allocation go in one call */
        while (j < n && b[j].p == p && b[j].ci == b[j - 1].ci + 1 && as_duplicate(p, b[j].ci) == dup)
            len += chunk_bytes(p, b[j++].ci);
        CUresult rc = use_device(dev) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
        if (rc == CUDA_SUCCESS && dup) rc = demand_advise(a, len, CU_MEM_ADVISE_SET_READ_MOSTLY, dev);
        if (rc == CUDA_SUCCESS) rc = prefetch(a, len, dev, 1);
        if (rc == CUDA_SUCCESS) count(&dp.ps[dev].bytes_in, len);
        else driver_error("prefetch to the device", rc, dev);
        if (rc != CUDA_SUCCESS && dup) /* not resident: no duplicate may be made on a read */
            demand_advise(a, len, CU_MEM_ADVISE_UNSET_READ_MOSTLY, dev);
        for (size_t k = i; k < j; k++) {
            p->ch[b[k].ci].dup = (uint8_t)dup;
            if (rc != CUDA_SUCCESS) b[k].ci |= 0x80000000u; /* failed: undone below */
        }
        i = j;
    }
    pthread_mutex_lock(&dp.pt.mu);
    for (size_t i = 0; i < n; i++) {
        struct paged *p = b[i].p;
        if (b[i].ci & 0x80000000u) {
            uint32_t ci = b[i].ci & 0x7fffffffu;
            /* a refused prefetch moved nothing: give the room back */
            p->ch[ci].state = C_HOST;
            vp_acct_release(p->dev, VP_KIND_resident, chunk_bytes(p, ci));
        }
        p->busy--;
    }
    pthread_cond_broadcast(&dp.pt.done_cv);
}

/* Makes room on dev for the requests r[0..nr), evicting what the policy
 * picks among the resident chunks not used at or after protect. Returns
 * the room then. mu held (dropped meanwhile). */
static uint64_t make_room_locked(int dev, struct vp_cand *r, size_t nr, uint64_t protect)
{
    /* first the device's view (drops mu: no resident list is held yet) */
    uint64_t room = room_seen_by_device(dev);
    struct vp_cand *v = NULL;
    struct cand_ref *refs = NULL;
    /* where evicting gives nothing back, nothing is evicted for room */
    size_t nv = dp.keeps[dev] ? 0 : residents_locked(dev, protect, &v, &refs);
    size_t k = vp_policy_plan(policy(), r, nr, v, nv, room);
    uint64_t freed = k ? evict_locked(dev, v, k) : 0;
    free(v);
    free(refs);
    if (!k) return room;
    /* what the device really gave back, not what the books say */
    uint64_t before = room;
    room = room_seen_by_device(dev);
    if (vp_policy_eviction_futile(before, room, freed)) {
        dp.keeps[dev] = 1;
        atomic_store(&dp.ps[dev].evictions_stopped, 1);
        vp_log(VP_INFO, "pager: evicting gave device %d no memory back (the UVM driver keeps it for the "
               "address range); it stops evicting there, chunks once resident come back at no cost", dev);
    }
    return room;
}

/* Lets the requests r[0..nr) of dev in, in the plan's order, while the
 * policy admits them: they take the room; a chunk that was resident
 * before comes back into memory the driver kept for it; the others stay
 * on the host and are read from there. mu held. */
static void admit_locked(int dev, struct vp_cand *r, size_t nr, uint64_t room)
{
    for (size_t i = 0; i < nr; i++) {
        struct req *q = r[i].ref;
        struct chunk *ch = &q->p->ch[q->ci];
        struct vp_chunk_view view = {ch->prev_use, ch->last_use, r[i].bytes, ch->warm, r[i].admit};
        enum vp_admit a = vp_policy_admit(&view, dp.keeps[dev], room, vp_cap_of(dev));
        if (a != VP_ADMIT_NO && vp_acct_reserve(dev, VP_KIND_resident, r[i].bytes) == 0) {
            ch->state = C_IN;
            ch->warm = 1;
            if (a == VP_ADMIT_ROOM) room -= r[i].bytes;
        } else {
            ch->state = C_HOST;
        }
    }
}

/* Drops the requests of b[0..n) that a free or a repeat made moot; returns
 * how many are left, at the front, and the earliest last use among them. */
static size_t valid_requests_locked(struct req *b, size_t n, uint64_t *protect)
{
    size_t nvalid = 0;
    *protect = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        struct chunk *ch = &b[i].p->ch[b[i].ci];
        if (b[i].p->gone || ch->state != C_QUEUED) {
            if (ch->state == C_QUEUED) ch->state = C_HOST;
            b[i].p->busy--;
            continue;
        }
        if (ch->last_use < *protect) *protect = ch->last_use;
        b[nvalid++] = b[i];
    }
    return nvalid;
}

/* Serves one batch of queued chunks (each holds a busy mark). mu held. */
static void serve_batch_locked(struct req *b, size_t n)
{
    uint64_t protect;
    n = valid_requests_locked(b, n, &protect);
    struct vp_cand *r = malloc((n ? n : 1) * sizeof *r);
    for (int dev = 0; r && dev < VP_MAX_DEVICES; dev++) {
        size_t nr = 0;
        for (size_t i = 0; i < n; i++) {
            struct chunk *ch = &b[i].p->ch[b[i].ci];
            if (b[i].p->dev != dev || ch->state != C_QUEUED) continue;
            r[nr++] = (struct vp_cand){vp_policy_next_use(ch->prev_use, ch->last_use, dp.tick), ch->last_use,
                                       chunk_bytes(b[i].p, b[i].ci), &b[i], 0};
        }
        if (nr) admit_locked(dev, r, nr, make_room_locked(dev, r, nr, protect));
    }
    free(r);
    size_t nin = 0;
    for (size_t i = 0; i < n; i++) {
        struct chunk *ch = &b[i].p->ch[b[i].ci];
        if (ch->state == C_QUEUED) ch->state = C_HOST; /* out of memory above */
        if (ch->state == C_IN) b[nin++] = b[i];
        else b[i].p->busy--;
    }
    if (nin) issue_in_locked(b, nin);
    else pthread_cond_broadcast(&dp.pt.done_cv);
}

static void serve_reclaims_locked(void)
{
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        if (!dp.pt.reclaim_want[d]) continue;
        uint64_t want = dp.pt.reclaim_want[d], room = vp_acct_room(d);
        dp.pt.reclaim_want[d] = 0;
        if (want > room && !dp.keeps[d]) { /* where evicting gives nothing back, nothing to reclaim */
            count(&dp.ps[d].reclaims, 1);
            struct vp_cand *v;
            struct cand_ref *refs;
            size_t nv = residents_locked(d, UINT64_MAX, &v, &refs);
            size_t k = vp_policy_victims(policy(), v, nv, want - room);
            if (k) evict_locked(d, v, k);
            free(v);
            free(refs);
        }
    }
    vp_pager_thread_reclaimed_locked(&dp.pt);
}

static void *pager_main(void *arg)
{
    (void)arg;
    vp_pager_thread_enter();
    static struct req batch[512];
    pthread_mutex_lock(&dp.pt.mu);
    for (;;) {
        /* reclaims are served even while capturing: an allocation waits on them */
        while (!dp.pt.stopping && !vp_pager_thread_reclaim_asked_locked(&dp.pt) && (atomic_load(&dp.pt.capturing) || !dp.qlen))
            pthread_cond_wait(&dp.pt.work_cv, &dp.pt.mu);
        if (dp.pt.stopping) break;
        if (vp_pager_thread_reclaim_asked_locked(&dp.pt)) {
            serve_reclaims_locked();
            continue;
        }
        size_t n = 0;
        while (dp.qlen && n < sizeof batch / sizeof *batch) {
            struct req r = queue[dp.qhead];
            dp.qhead = (dp.qhead + 1) % QCAP;
            dp.qlen--;
            if (!r.p) continue;
            r.p->busy++;
            batch[n++] = r;
        }
        serve_batch_locked(batch, n);
    }
    pthread_mutex_unlock(&dp.pt.mu);
    return NULL;
}

/* Starts the pager thread once. Returns 0, or -1. */
int demand_start_locked(void)
{
    return vp_pager_thread_start_locked(&dp.pt, pager_main, "vpage-pager", "pager: cannot start its thread; paging is off");
}

