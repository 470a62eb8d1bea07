/* paging.c - see paging.h. */
#define _GNU_SOURCE
#include "paging.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../interpose/driver.h"
#include "../policy/demand.h"
#include "account.h"
#include "apool.h"
#include "shared.h"
#include "stream.h"
#include "weights.h"

enum chunk_state { C_HOST, C_QUEUED, C_IN, C_OUT };

struct chunk {
    uint64_t last_use; /* launch tick of the latest use */
    uint64_t prev_use; /* and of the one before (0: none) */
    uint8_t state;     /* enum chunk_state */
    uint8_t dup;       /* resident as a read-mostly duplicate (pager thread only) */
    uint8_t warm;      /* was resident: the UVM driver may still hold its device memory */
};

struct paged {
    CUdeviceptr base;
    uint64_t size;
    int dev;
    int busy;          /* chunks of it in the pager thread's hands */
    int gone;          /* being freed */
    uint32_t nchunks;
    struct chunk ch[];
};

struct req {
    struct paged *p;   /* NULL: purged by a free */
    uint32_t ci;
};

/* Per-device counters for the stats dump. */
#define VP_PAGE_STATS(X)                                                             \
    X(paged, "bytes of paged allocations now")                                        \
    X(paged_peak, "most bytes of paged allocations at once")                          \
    X(bytes_in, "bytes prefetched to the device")                                     \
    X(bytes_writeback, "bytes evicted by copying back to the host")                   \
    X(bytes_collapsed, "bytes evicted by dropping a read-mostly duplicate")           \
    X(evictions, "chunks evicted")                                                    \
    X(prefetch_calls, "prefetch calls issued to the driver")                          \
    X(remote_estimate, "bytes of chunks launches touched while not resident (read remotely, at most)") \
    X(queue_drops, "chunks not queued because the queue was full")                   \
    X(reclaims, "times unpageable memory took room from resident chunks")             \
    X(refused, "paged allocations refused (VPAGE_PAGED_LIMIT)")                       \
    X(driver_errors, "prefetch or advice calls the driver refused")                  \
    X(unbooked_peak, "most device bytes in use beyond vpage's books (the UVM driver keeps memory of evicted chunks); they shrink the room") \
    X(evictions_stopped, "1 when the pager does not evict on this device: the card is larger than the cap, or an eviction gave no memory back (chunks are then placed once, hot ones first)")

struct page_stats {
#define VP_X(name, doc) atomic_uint_fast64_t name;
    VP_PAGE_STATS(VP_X)
#undef VP_X
};

#define QCAP 8192
#define MAX_SCAN 512 /* pointer-sized words inside paged memory taken per launch */

static struct vp_pager_thread pt = VP_PAGER_THREAD_INIT;
static struct vp_rangetab tab; /* the paged allocations, by base */
#define TAB(i) ((struct paged *)tab.r[i].owner)
static struct req queue[QCAP];
static size_t qhead, qlen;
static uint64_t tick;

static atomic_int npaged;
static atomic_uint_fast64_t lo_addr = UINT64_MAX, hi_addr;
static atomic_schar can_page[VP_MAX_DEVICES]; /* 0 unknown, 1 yes, -1 no */
static struct page_stats ps[VP_MAX_DEVICES];
static atomic_uint_fast64_t msgs_driver;

static _Atomic(CUstream) alloc_stream[VP_MAX_DEVICES]; /* for placing new allocations */

/* pager thread only */
static CUcontext ctx[VP_MAX_DEVICES];
static CUstream stream[VP_MAX_DEVICES];
static int ctx_dev = -1;
static uint64_t start_used[VP_MAX_DEVICES], start_counted[VP_MAX_DEVICES];
static int have_start[VP_MAX_DEVICES];
static int keeps[VP_MAX_DEVICES]; /* evicting gives this device no memory back */

int vp_paging_on(void) { return vp_opt.paging == VP_PAGING_DEMAND || vp_opt.paging == VP_PAGING_STREAM; }

static enum vp_policy_kind policy(void)
{
    return vp_opt.policy == VP_POLICY_OPT_LOOP ? VP_POLICY_LOOP : VP_POLICY_LRU;
}

static CUdeviceptr chunk_addr(const struct paged *p, uint32_t ci) { return p->base + (uint64_t)ci * vp_opt.chunk; }

static uint64_t chunk_bytes(const struct paged *p, uint32_t ci)
{
    uint64_t off = (uint64_t)ci * vp_opt.chunk;
    return p->size - off < vp_opt.chunk ? p->size - off : vp_opt.chunk;
}

static void count(atomic_uint_fast64_t *c, uint64_t v) { atomic_fetch_add_explicit(c, v, memory_order_relaxed); }

/* Moves g up (up) or down to v if v is past it. */

/* ---- the table of paged allocations (mu held) ---- */

static struct paged *find_locked(CUdeviceptr a) { return vp_rangetab_find(&tab, a); }

static int insert_locked(struct paged *p) { return vp_rangetab_insert(&tab, p->base, p->size, p); }

static void remove_locked(struct paged *p) { vp_rangetab_remove(&tab, p->base); }

/* ---- the driver, from the pager thread ---- */

static void driver_error(const char *what, CUresult rc, int dev)
{
    count(&ps[dev].driver_errors, 1);
    vp_log_limited(VP_WARN, &msgs_driver, "pager: %s on device %d failed (CUresult %d); the data stays correct, "
                   "it is read from the host instead", what, dev, (int)rc);
}

/* Makes dev's primary context current on the pager thread, with a stream
 * of the pager's own. Returns 0, or -1. */
static int use_device(int dev)
{
    if (dev == ctx_dev) return 0;
    if (vp_use_primary_ctx(&ctx[dev], dev)) return -1;
    if (!stream[dev] && vp_real.cuStreamCreate(&stream[dev], CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
        stream[dev] = NULL;
        return -1;
    }
    ctx_dev = dev;
    return 0;
}

static CUresult prefetch(CUdeviceptr a, uint64_t n, int dev, int to_device)
{
    CUmemLocation loc = {to_device ? CU_MEM_LOCATION_TYPE_DEVICE : CU_MEM_LOCATION_TYPE_HOST, to_device ? dev : 0};
    count(&ps[dev].prefetch_calls, 1);
    return vp_real.cuMemPrefetchAsync_v2(a, n, loc, 0, stream[dev]);
}

static CUresult advise(CUdeviceptr a, uint64_t n, CUmem_advise what, int dev)
{
    CUmemLocation loc = {CU_MEM_LOCATION_TYPE_DEVICE, dev};
    return vp_real.cuMemAdvise_v2(a, n, what, loc);
}

/* ---- eviction (pager thread, mu held on entry and exit) ---- */

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
    for (size_t i = 0; i < tab.n; i++)
        if (TAB(i)->dev == dev && !TAB(i)->gone) capn += TAB(i)->nchunks;
    if (!capn) return 0;
    struct vp_cand *c = malloc(capn * sizeof *c);
    struct cand_ref *r = malloc(capn * sizeof *r);
    if (!c || !r) {
        free(c);
        free(r);
        return 0;
    }
    for (size_t i = 0; i < tab.n; i++) {
        struct paged *p = TAB(i);
        if (p->dev != dev || p->gone) continue;
        for (uint32_t ci = 0; ci < p->nchunks; ci++) {
            struct chunk *ch = &p->ch[ci];
            if (ch->state != C_IN || ch->last_use >= protect) continue;
            r[n] = (struct cand_ref){p, ci};
            c[n] = (struct vp_cand){vp_policy_next_use(ch->prev_use, ch->last_use, tick), ch->last_use,
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
    pthread_mutex_unlock(&pt.mu);

    int ok = use_device(dev) == 0;
    for (size_t j = 0; ok && j < k; j++) {
        struct cand_ref *v = c[j].ref;
        struct chunk *ch = &v->p->ch[v->ci];
        CUdeviceptr a = chunk_addr(v->p, v->ci);
        CUresult rc = CUDA_SUCCESS;
        /* A duplicate is dropped by taking read-mostly off (the host copy
         * is valid); the prefetch after it moves only pages written since. */
        if (ch->dup) rc = advise(a, c[j].bytes, CU_MEM_ADVISE_UNSET_READ_MOSTLY, dev);
        if (rc == CUDA_SUCCESS) rc = prefetch(a, c[j].bytes, dev, 0);
        if (rc != CUDA_SUCCESS) driver_error("eviction", rc, dev);
    }
    if (ok && k) ok = vp_real.cuStreamSynchronize(stream[dev]) == CUDA_SUCCESS;
    if (!ok) driver_error("waiting for evictions", CUDA_ERROR_UNKNOWN, dev);

    pthread_mutex_lock(&pt.mu);
    uint64_t freed = 0;
    for (size_t j = 0; j < k; j++) {
        struct cand_ref *v = c[j].ref;
        struct chunk *ch = &v->p->ch[v->ci];
        v->p->busy--;
        if (!ok) { /* cannot tell where the bytes are: they stay counted */
            ch->state = C_IN;
            continue;
        }
        count(ch->dup ? &ps[dev].bytes_collapsed : &ps[dev].bytes_writeback, c[j].bytes);
        count(&ps[dev].evictions, 1);
        ch->state = C_HOST;
        ch->dup = 0;
        vp_acct_release(dev, VP_KIND_resident, c[j].bytes);
        freed += c[j].bytes;
    }
    pthread_cond_broadcast(&pt.done_cv);
    return freed;
}

/* ---- bringing chunks in (pager thread) ---- */

static uint64_t room_on(int dev)
{
    uint64_t cap = vp_cap_of(dev), total = vp_acct_get(dev, VP_KIND_COUNT).cur;
    return cap > total ? cap - total : 0;
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
    pthread_mutex_unlock(&pt.mu);
    int ok = use_device(dev) == 0 && vp_real.cuMemGetInfo_v2 && vp_real.cuMemGetInfo_v2(&f, &t) == CUDA_SUCCESS &&
             f <= t;
    pthread_mutex_lock(&pt.mu);
    uint64_t room = room_on(dev);
    if (!ok) return room;
    uint64_t used = t - f, counted = vp_acct_get(dev, VP_KIND_COUNT).cur;
    if (!have_start[dev]) {
        start_used[dev] = used;
        start_counted[dev] = counted;
        have_start[dev] = 1;
        uint64_t cap = vp_cap_of(dev);
        if (cap != VP_NO_CAP && t > cap + cap / 4) {
            /* the driver would keep the memory of every chunk ever let in
             * (bench/probes/uvm_keep.c): place chunks once instead */
            keeps[dev] = 1;
            atomic_store(&ps[dev].evictions_stopped, 1);
            char a[32], b[32];
            vp_log(VP_INFO, "pager: device %d has %s, the cap is %s: the UVM driver keeps the memory of evicted "
                   "chunks, so chunks are placed once (those in hot use first) and not evicted", dev,
                   vp_fmt_bytes(t, a, sizeof a), vp_fmt_bytes(cap, b, sizeof b));
        }
        return room;
    }
    int64_t extra = (int64_t)(used - start_used[dev]) - ((int64_t)counted - (int64_t)start_counted[dev]);
    if (extra <= 0) return room;
    vp_gauge_move(&ps[dev].unbooked_peak, (uint64_t)extra, 1);
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
    pthread_mutex_unlock(&pt.mu);
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
        if (rc == CUDA_SUCCESS && dup) rc = advise(a, len, CU_MEM_ADVISE_SET_READ_MOSTLY, dev);
        if (rc == CUDA_SUCCESS) rc = prefetch(a, len, dev, 1);
        if (rc == CUDA_SUCCESS) count(&ps[dev].bytes_in, len);
        else driver_error("prefetch to the device", rc, dev);
        if (rc != CUDA_SUCCESS && dup) /* not resident: no duplicate may be made on a read */
            advise(a, len, CU_MEM_ADVISE_UNSET_READ_MOSTLY, dev);
        for (size_t k = i; k < j; k++) {
            p->ch[b[k].ci].dup = (uint8_t)dup;
            if (rc != CUDA_SUCCESS) b[k].ci |= 0x80000000u; /* failed: undone below */
        }
        i = j;
    }
    pthread_mutex_lock(&pt.mu);
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
    pthread_cond_broadcast(&pt.done_cv);
}

/* Serves one batch of queued chunks (each holds a busy mark). mu held. */
static void serve_batch_locked(struct req *b, size_t n)
{
    uint64_t protect = UINT64_MAX;
    size_t nvalid = 0;
    for (size_t i = 0; i < n; i++) {
        struct chunk *ch = &b[i].p->ch[b[i].ci];
        if (b[i].p->gone || ch->state != C_QUEUED) {
            if (ch->state == C_QUEUED) ch->state = C_HOST;
            b[i].p->busy--;
            continue;
        }
        if (ch->last_use < protect) protect = ch->last_use;
        b[nvalid++] = b[i];
    }
    n = nvalid;
    struct vp_cand *r = malloc((n ? n : 1) * sizeof *r);
    size_t nin = 0;
    for (int dev = 0; r && dev < VP_MAX_DEVICES; dev++) {
        size_t nr = 0;
        for (size_t i = 0; i < n; i++) {
            struct chunk *ch = &b[i].p->ch[b[i].ci];
            if (b[i].p->dev != dev || ch->state != C_QUEUED) continue;
            r[nr++] = (struct vp_cand){vp_policy_next_use(ch->prev_use, ch->last_use, tick), ch->last_use,
                                       chunk_bytes(b[i].p, b[i].ci), &b[i], 0};
        }
        if (!nr) continue;
        /* first the device's view (drops mu: no resident list is held yet) */
        uint64_t room = room_seen_by_device(dev);
        struct vp_cand *v = NULL;
        struct cand_ref *refs = NULL;
        /* where evicting gives nothing back, nothing is evicted for room */
        size_t nv = keeps[dev] ? 0 : residents_locked(dev, protect, &v, &refs);
        size_t k = vp_policy_plan(policy(), r, nr, v, nv, room);
        if (k) {
            uint64_t before = room, freed = evict_locked(dev, v, k);
            free(v);
            free(refs);
            v = NULL;
            refs = NULL;
            /* what the device really gave back, not what the books say */
            room = room_seen_by_device(dev);
            if (freed && room < before + freed / 2) {
                keeps[dev] = 1;
                atomic_store(&ps[dev].evictions_stopped, 1);
                vp_log(VP_INFO, "pager: evicting gave device %d no memory back (the UVM driver keeps it for the "
                       "address range); it stops evicting there, chunks once resident come back at no cost", dev);
            }
        }
        free(v);
        free(refs);
        /* admitted requests take the room, in the plan's order; a chunk that
         * was resident before comes back into memory the driver kept for
         * it; the others stay on the host and are read from there */
        for (size_t i = 0; i < nr; i++) {
            struct req *q = r[i].ref;
            struct chunk *ch = &q->p->ch[q->ci];
            int free_ride = keeps[dev] && ch->warm;
            int fits = keeps[dev] ? vp_policy_place(ch->prev_use, ch->last_use, r[i].bytes, room, vp_cap_of(dev))
                                  : r[i].admit && r[i].bytes <= room;
            if ((free_ride || fits) && vp_acct_reserve(dev, VP_KIND_resident, r[i].bytes) == 0) {
                ch->state = C_IN;
                ch->warm = 1;
                if (!free_ride) room -= r[i].bytes;
            } else {
                ch->state = C_HOST;
            }
        }
    }
    free(r);
    for (size_t i = 0; i < n; i++) {
        struct chunk *ch = &b[i].p->ch[b[i].ci];
        if (ch->state == C_QUEUED) ch->state = C_HOST; /* out of memory above */
        if (ch->state == C_IN) b[nin++] = b[i];
        else b[i].p->busy--;
    }
    if (nin) issue_in_locked(b, nin);
    else pthread_cond_broadcast(&pt.done_cv);
}

static void serve_reclaims_locked(void)
{
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        if (!pt.reclaim_want[d]) continue;
        uint64_t want = pt.reclaim_want[d], room = room_on(d);
        pt.reclaim_want[d] = 0;
        if (want > room && !keeps[d]) { /* where evicting gives nothing back, nothing to reclaim */
            count(&ps[d].reclaims, 1);
            struct vp_cand *v;
            struct cand_ref *refs;
            size_t nv = residents_locked(d, UINT64_MAX, &v, &refs);
            size_t k = vp_policy_victims(policy(), v, nv, want - room);
            if (k) evict_locked(d, v, k);
            free(v);
            free(refs);
        }
    }
    vp_pager_thread_reclaimed_locked(&pt);
}

static void *pager_main(void *arg)
{
    (void)arg;
    vp_pager_thread_enter();
    static struct req batch[512];
    pthread_mutex_lock(&pt.mu);
    for (;;) {
        /* reclaims are served even while capturing: an allocation waits on them */
        while (!pt.stopping && !vp_pager_thread_reclaim_asked_locked(&pt) && (atomic_load(&pt.capturing) || !qlen))
            pthread_cond_wait(&pt.work_cv, &pt.mu);
        if (pt.stopping) break;
        if (vp_pager_thread_reclaim_asked_locked(&pt)) {
            serve_reclaims_locked();
            continue;
        }
        size_t n = 0;
        while (qlen && n < sizeof batch / sizeof *batch) {
            struct req r = queue[qhead];
            qhead = (qhead + 1) % QCAP;
            qlen--;
            if (!r.p) continue;
            r.p->busy++;
            batch[n++] = r;
        }
        serve_batch_locked(batch, n);
    }
    pthread_mutex_unlock(&pt.mu);
    return NULL;
}

/* Starts the pager thread once. Returns 0, or -1. */
static int start_locked(void)
{
    return vp_pager_thread_start_locked(&pt, pager_main, "vpage-pager", "pager: cannot start its thread; paging is off");
}

/* ---- the program's calls ---- */

static int device_can_page(int dev)
{
    int v = atomic_load(&can_page[dev]);
    if (v) return v > 0;
    CUdevice d;
    int attr = 0;
    if (vp_real.cuDeviceGet(&d, dev) != CUDA_SUCCESS ||
        vp_real.cuDeviceGetAttribute(&attr, CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS, d) != CUDA_SUCCESS)
        attr = 0;
    if (!attr)
        vp_log(VP_WARN, "device %d has no concurrent managed access: its allocations are not paged, the cap "
               "stays a wall there", dev);
    atomic_store(&can_page[dev], attr ? 1 : -1);
    return attr != 0;
}

/* Places every page of a new allocation in host memory before the program
 * sees it. Left unplaced, pages a kernel writes first are placed on the
 * device by the driver whatever the preferred location, outside the
 * pager's books (measured on the H100: bench/results). */
static void place_on_host(CUdeviceptr p, size_t n, int dev)
{
    CUstream s = atomic_load(&alloc_stream[dev]);
    if (!s) {
        CUstream mine = NULL, none = NULL;
        if (vp_real.cuStreamCreate(&mine, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
            driver_error("creating a stream to place allocations", CUDA_ERROR_UNKNOWN, dev);
            return;
        }
        if (atomic_compare_exchange_strong(&alloc_stream[dev], &none, mine)) s = mine;
        else {
            if (vp_real.cuStreamDestroy_v2) vp_real.cuStreamDestroy_v2(mine);
            s = none;
        }
    }
    CUmemLocation host = {CU_MEM_LOCATION_TYPE_HOST, 0};
    count(&ps[dev].prefetch_calls, 1);
    CUresult rc = vp_real.cuMemPrefetchAsync_v2(p, n, host, 0, s);
    if (rc == CUDA_SUCCESS) rc = vp_real.cuStreamSynchronize(s);
    if (rc != CUDA_SUCCESS) driver_error("placing a new allocation on the host", rc, dev);
}


/* The stats of the program's cuMemAlloc_v2; the cache's are its own. */
static void stat_add(enum vp_hook_id hook, enum vp_counter c, uint64_t n)
{
    if (hook == VP_HOOK_cuMemAlloc_v2) vp_stat_add(hook, c, n);
}

CUresult vp_pager_alloc(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes)
{
    if (vp_stream_on()) {
        CUresult rc = vp_stream_alloc(hook, dptr, bytes);
        if (rc == CUDA_SUCCESS && hook == VP_HOOK_cuMemAlloc_v2) {
            vp_stat_add(hook, VP_CTR_bytes, bytes);
            vp_stat_live_add(hook, bytes);
        } else if (rc != CUDA_SUCCESS && rc != CUDA_ERROR_NOT_SUPPORTED) {
            stat_add(hook, rc == CUDA_ERROR_OUT_OF_MEMORY ? VP_CTR_refused : VP_CTR_failed, 1);
        }
        return rc;
    }
    int dev = vp_drv_current_device();
    if (dev < 0 || dev >= VP_MAX_DEVICES || bytes == 0 || !dptr) return CUDA_ERROR_NOT_SUPPORTED;
    if (!vp_real.cuMemAdvise_v2 || !vp_real.cuMemPrefetchAsync_v2 || !vp_real.cuDeviceGet ||
        !vp_real.cuDeviceGetAttribute || !vp_real.cuDevicePrimaryCtxRetain || !vp_real.cuCtxSetCurrent ||
        !vp_real.cuStreamCreate || !vp_real.cuStreamSynchronize || !vp_real.cuMemAllocManaged || !device_can_page(dev))
        return CUDA_ERROR_NOT_SUPPORTED;
    if (vp_paged_take(&ps[dev].paged, bytes, dev, hook, &ps[dev].refused)) {
        stat_add(hook, VP_CTR_refused, 1);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    vp_gauge_move(&ps[dev].paged_peak, atomic_load(&ps[dev].paged), 1);

    uint32_t nchunks = (uint32_t)((bytes + vp_opt.chunk - 1) / vp_opt.chunk);
    struct paged *p = calloc(1, sizeof *p + (size_t)nchunks * sizeof(struct chunk));
    pthread_mutex_lock(&pt.mu);
    int ok = p && start_locked() == 0;
    pthread_mutex_unlock(&pt.mu);
    CUresult rc = ok ? vp_real.cuMemAllocManaged(dptr, bytes, CU_MEM_ATTACH_GLOBAL) : CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_SUCCESS) {
        /* home on the host, mapped for the device: the device reads what
         * is not resident in place, and nothing migrates unless asked */
        CUmemLocation host = {CU_MEM_LOCATION_TYPE_HOST, 0};
        CUresult ra = vp_real.cuMemAdvise_v2(*dptr, bytes, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host);
        if (ra == CUDA_SUCCESS) ra = advise(*dptr, bytes, CU_MEM_ADVISE_SET_ACCESSED_BY, dev);
        if (ra != CUDA_SUCCESS) {
            vp_log(VP_WARN, "pager: the driver refused managed-memory advice (CUresult %d); this allocation "
                   "is not paged", (int)ra);
            vp_real.cuMemFree_v2(*dptr);
            rc = CUDA_ERROR_NOT_SUPPORTED;
        } else {
            place_on_host(*dptr, bytes, dev);
        }
    }
    if (rc == CUDA_SUCCESS) {
        p->base = *dptr;
        p->size = bytes;
        p->dev = dev;
        p->nchunks = nchunks;
        pthread_mutex_lock(&pt.mu);
        if (insert_locked(p)) rc = CUDA_ERROR_OUT_OF_MEMORY;
        pthread_mutex_unlock(&pt.mu);
        if (rc != CUDA_SUCCESS) vp_real.cuMemFree_v2(*dptr);
    }
    if (rc != CUDA_SUCCESS) {
        free(p);
        atomic_fetch_sub(&ps[dev].paged, bytes);
        if (rc != CUDA_ERROR_NOT_SUPPORTED) stat_add(hook, VP_CTR_failed, 1);
        return rc;
    }
    vp_gauge_move(&lo_addr, p->base, 0);
    vp_gauge_move(&hi_addr, p->base + bytes, 1);
    atomic_fetch_add(&npaged, 1);
    stat_add(hook, VP_CTR_bytes, bytes);
    if (hook == VP_HOOK_cuMemAlloc_v2) vp_stat_live_add(hook, bytes);
    return CUDA_SUCCESS;
}

int vp_pager_free(CUdeviceptr dptr, CUresult *rc, enum vp_hook_id hook)
{
    uint64_t size = 0;
    if (vp_stream_free(dptr, rc, &size)) {
        if (hook == VP_HOOK_cuMemAlloc_v2) vp_stat_live_sub(hook, size);
        vp_weights_written(dptr, size);
        return 1;
    }
    if (!atomic_load_explicit(&npaged, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&pt.mu);
    struct paged *p = find_locked(dptr);
    if (!p || p->base != dptr || p->gone) {
        pthread_mutex_unlock(&pt.mu);
        return 0;
    }
    p->gone = 1;
    for (size_t i = 0, j = qhead; i < qlen; i++, j = (j + 1) % QCAP)
        if (queue[j].p == p) queue[j].p = NULL;
    while (p->busy) pthread_cond_wait(&pt.done_cv, &pt.mu);
    /* out of the table before the driver frees: the address may be handed
     * to another thread's allocation as soon as it does */
    remove_locked(p);
    pthread_mutex_unlock(&pt.mu);

    *rc = vp_real.cuMemFree_v2(dptr);

    pthread_mutex_lock(&pt.mu);
    if (*rc != CUDA_SUCCESS) {
        p->gone = 0;
        insert_locked(p);
        pthread_mutex_unlock(&pt.mu);
        vp_stat_add(VP_HOOK_cuMemFree_v2, VP_CTR_failed, 1);
        return 1;
    }
    uint64_t resident = 0;
    for (uint32_t ci = 0; ci < p->nchunks; ci++)
        if (p->ch[ci].state == C_IN) resident += chunk_bytes(p, ci);
    atomic_fetch_sub(&npaged, 1);
    pthread_mutex_unlock(&pt.mu);
    if (resident) vp_acct_release(p->dev, VP_KIND_resident, resident);
    atomic_fetch_sub(&ps[p->dev].paged, p->size);
    if (hook == VP_HOOK_cuMemAlloc_v2) vp_stat_live_sub(hook, p->size);
    vp_weights_written(dptr, p->size);
    free(p);
    return 1;
}

int vp_pager_owns(CUdeviceptr a)
{
    if (vp_stream_owns(a)) return 1;
    if (!atomic_load_explicit(&npaged, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&pt.mu);
    int r = find_locked(a) != NULL;
    pthread_mutex_unlock(&pt.mu);
    return r;
}

/* The packed parameter buffer of a launch made with `extra`. */
static const char *packed_params(void **extra, size_t *len)
{
    const char *buf = NULL;
    *len = 0;
    for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END && i < 16; i += 2) {
        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buf = extra[i + 1];
        else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1]) *len = *(size_t *)extra[i + 1];
    }
    return buf;
}

int vp_pager_launch(struct vp_kernel *k, void **params, void **extra)
{
    uint64_t slo = 0, shi = 0;
    int streaming = vp_stream_span(&slo, &shi);
    if (vp_likely(!atomic_load_explicit(&npaged, memory_order_relaxed) && !streaming)) return 0;
    const char *buf = NULL;
    size_t buflen = 0;
    int known = k && atomic_load(&k->layout) == VP_LAYOUT_KNOWN && k->nparams > 0;
    if (known && !params && (!extra || !(buf = packed_params(extra, &buflen)))) known = 0;
    /* streamed memory must not move under a kernel whose pointers cannot
     * be read: it is taken to touch everything */
    if (!known) return streaming ? vp_stream_op_begin(NULL, 0, 1, 0, k ? k->name : "kernel") : 0;
    uint64_t lo = atomic_load_explicit(&lo_addr, memory_order_relaxed);
    uint64_t hi = atomic_load_explicit(&hi_addr, memory_order_relaxed);
    if (streaming) {
        if (slo < lo) lo = slo;
        if (shi > hi) hi = shi;
    }
    uint64_t v[MAX_SCAN];
    size_t n = 0;
    int over = 0;
    uint32_t tk = 0, tu = 0; /* TMA descriptors known, unknown */
    /* Every 8-byte word of every parameter: pointers, and pointers inside
     * by-value structs (TensorIterator's arrays of data pointers). */
    for (int i = 0; i < k->nparams && !over; i++) {
        uint32_t sz = k->param_size[i];
        const char *src = params ? params[i] : buf + k->param_off[i];
        if (!params && (uint64_t)k->param_off[i] + sz > buflen) break;
        if (!src) continue;
        size_t before = n;
        for (uint32_t o = 0; o + 8 <= sz; o += 8) {
            uint64_t x;
            memcpy(&x, src + o, 8);
            if (x < lo || x >= hi) continue;
            if (n == MAX_SCAN) {
                over = 1;
                break;
            }
            v[n++] = x;
        }
        /* a TMA descriptor: its address as recorded when it was made */
        if (sz == sizeof(CUtensorMap) && k->param_off[i] % 64 == 0 && !over) {
            uint64_t a = vp_registry_tmap_addr(src);
            if (a && a >= lo && a < hi) {
                if (n == MAX_SCAN) over = 1;
                else v[n++] = a;
            }
            /* one that was not seen made, with no pointer in it either:
             * streamed memory cannot be ruled out */
            if (streaming && !a && n == before) over = 1;
            if (a) tk++;
            else tu++;
        }
    }
    if (streaming && (tk || tu)) vp_stream_note_tmap(tk, tu);
    if (streaming) return vp_stream_op_begin(v, n, over, 1, k->name);
    if (!n || atomic_load(&pt.capturing)) return 0; /* while capturing: recorded into a graph, not run now */
    pthread_mutex_lock(&pt.mu);
    uint64_t t = ++tick;
    int queued = 0;
    for (size_t j = 0; j < n; j++) {
        struct paged *p = find_locked(v[j]);
        if (!p || p->gone) continue;
        uint64_t cap = vp_cap_of(p->dev), first, cnt;
        vp_policy_demand_range(p->size, v[j] - p->base, vp_opt.chunk, cap / 4, &first, &cnt);
        for (uint64_t ci = first; ci < first + cnt; ci++) {
            struct chunk *ch = &p->ch[ci];
            if (ch->last_use == t) continue; /* seen through another pointer */
            ch->prev_use = ch->last_use;
            ch->last_use = t;
            if (ch->state != C_IN) count(&ps[p->dev].remote_estimate, chunk_bytes(p, (uint32_t)ci));
            if (ch->state != C_HOST) continue;
            if (qlen == QCAP) {
                count(&ps[p->dev].queue_drops, 1);
                continue;
            }
            queue[(qhead + qlen++) % QCAP] = (struct req){p, (uint32_t)ci};
            ch->state = C_QUEUED;
            queued = 1;
        }
    }
    if (queued) pthread_cond_signal(&pt.work_cv);
    pthread_mutex_unlock(&pt.mu);
    return 0;
}

int vp_pager_op_begin(const uint64_t *ptrs, size_t n, int all)
{
    uint64_t lo, hi;
    if (vp_likely(!vp_stream_span(&lo, &hi))) return 0;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (ptrs[i] >= lo && ptrs[i] < hi) j++;
    return j || all ? vp_stream_op_begin(ptrs, n, all, 0, all ? "graph" : "copy") : 0;
}

void vp_pager_op_end(CUstream s, int per_thread) { vp_stream_op_end(s, per_thread); }

void vp_pager_capture(int delta)
{
    vp_stream_capture(delta);
    vp_pager_thread_capture(&pt, delta);
}

int vp_pager_reclaim(int dev, enum vp_kind kind, uint64_t bytes)
{
    if (vp_stream_on()) return vp_stream_reclaim(dev, kind, bytes);
    return atomic_load(&npaged) ? vp_pager_thread_reclaim(&pt, dev, kind, bytes) : -1;
}

void vp_pager_report(int json, void (*emit)(void *ctx, const char *fmt, ...), void *ctx_)
{
    if (vp_stream_on()) {
        vp_stream_report(json, emit, ctx_);
        return;
    }
    vp_report_begin(json, emit, ctx_, vp_opt.paging == VP_PAGING_DEMAND ? "demand" : "off");
    int first = 1;
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        if (!atomic_load(&ps[d].paged_peak)) continue;
        vp_report_device(json, emit, ctx_, first, d);
#define VP_X(name, doc) vp_report_field(json, emit, ctx_, #name, atomic_load(&ps[d].name));
        VP_PAGE_STATS(VP_X)
#undef VP_X
        vp_apool_report(json, emit, ctx_, d);
        vp_report_device_end(json, emit, ctx_);
        first = 0;
    }
    vp_report_end(json, emit, ctx_);
}

void vp_pager_shutdown(void)
{
    vp_stream_shutdown();
    vp_pager_thread_stop(&pt);
}

void vp_pager_lock(void)
{
    pthread_mutex_lock(&pt.mu);
    vp_stream_lock();
}

void vp_pager_unlock(void)
{
    vp_stream_unlock();
    pthread_mutex_unlock(&pt.mu);
}

void vp_pager_reset_child(void)
{
    vp_stream_reset_child();
    /* the parent's allocations and thread are not ours: forget them (their
     * records leak, as the parent's device memory does for the child) */
    vp_pager_thread_reset_child(&pt);
    vp_rangetab_forget(&tab);
    qhead = qlen = 0;
    memset(ctx, 0, sizeof ctx);
    memset(stream, 0, sizeof stream);
    memset(have_start, 0, sizeof have_start);
    memset(keeps, 0, sizeof keeps);
    for (int d = 0; d < VP_MAX_DEVICES; d++) atomic_store(&alloc_stream[d], NULL);
    ctx_dev = -1;
    atomic_store(&npaged, 0);
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
#define VP_X(name, doc) atomic_store(&ps[d].name, 0);
        VP_PAGE_STATS(VP_X)
#undef VP_X
    }
}
