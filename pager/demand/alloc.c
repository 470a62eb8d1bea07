/* alloc.c - the demand pager's allocations, frees and launches, its
 * report and fork, and its table of operations (pager/pager.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../books/account.h"
#include "../../common/log.h"
#include "../../driver/alloc.h"
#include "../../driver/exec.h"
#include "../../driver/query.h"
#include "../demand.h"
#include "internal.h"

struct demand_pager dp = {
    .pt = VP_PAGER_THREAD_INIT,
    .allocs = VP_ALLOCS_INIT,
    .ctx_dev = -1,
};
struct req queue[QCAP];


static int device_can_page(int dev)
{
    int v = atomic_load(&dp.can_page[dev]);
    if (v) return v > 0;
    int attr = vp_drv_device_attr(dev, CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS, 0);
    if (!attr)
        vp_log(VP_WARN, "device %d has no concurrent managed access: its allocations are not paged, the cap "
               "stays a wall there", dev);
    atomic_store(&dp.can_page[dev], attr ? 1 : -1);
    return attr != 0;
}

/* Places every page of a new allocation in host memory before the program
 * sees it. Left unplaced, pages a kernel writes first are placed on the
 * device by the driver whatever the preferred location, outside the
 * pager's books (measured on the H100: bench/results). */
static void place_on_host(CUdeviceptr p, size_t n, int dev)
{
    CUstream s = atomic_load(&dp.alloc_stream[dev]);
    if (!s) {
        CUstream mine = NULL, none = NULL;
        if (vp_drv_stream_new(&mine, 0) != CUDA_SUCCESS) {
            driver_error("creating a stream to place allocations", CUDA_ERROR_UNKNOWN, dev);
            return;
        }
        if (atomic_compare_exchange_strong(&dp.alloc_stream[dev], &none, mine)) s = mine;
        else {
            vp_drv_stream_drop(mine);
            s = none;
        }
    }
    count(&dp.ps[dev].prefetch_calls, 1);
    CUresult rc = vp_drv_prefetch(p, n, dev, 1, s);
    if (rc == CUDA_SUCCESS) rc = vp_drv_sync(s);
    if (rc != CUDA_SUCCESS) driver_error("placing a new allocation on the host", rc, dev);
}

/* Managed memory for a new paged allocation: home on the host, mapped for
 * the device (the device reads what is not resident in place, and nothing
 * migrates unless asked), placed there. */
static CUresult managed_at_home(CUdeviceptr *dptr, size_t bytes, int dev)
{
    CUresult rc = vp_drv_alloc_managed(dptr, bytes, CU_MEM_ATTACH_GLOBAL);
    if (rc != CUDA_SUCCESS) return rc;
    CUresult ra = vp_drv_advise(*dptr, bytes, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, dev, 1);
    if (ra == CUDA_SUCCESS) ra = demand_advise(*dptr, bytes, CU_MEM_ADVISE_SET_ACCESSED_BY, dev);
    if (ra != CUDA_SUCCESS) {
        vp_log(VP_WARN, "pager: the driver refused managed-memory advice (CUresult %d); this allocation "
               "is not paged", (int)ra);
        vp_drv_free(*dptr);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    place_on_host(*dptr, bytes, dev);
    return CUDA_SUCCESS;
}

static CUresult demand_alloc(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes)
{
    int dev = vp_drv_current_device();
    if (dev < 0 || dev >= VP_MAX_DEVICES || bytes == 0 || !dptr || !vp_drv_managed_usable() ||
        !device_can_page(dev))
        return CUDA_ERROR_NOT_SUPPORTED;
    if (vp_paged_take(&dp.ps[dev].paged, bytes, dev, hook, &dp.ps[dev].refused)) return CUDA_ERROR_OUT_OF_MEMORY;
    vp_gauge_move(&dp.ps[dev].paged_peak, atomic_load(&dp.ps[dev].paged), 1);

    uint32_t nchunks = (uint32_t)((bytes + vp_opt.chunk - 1) / vp_opt.chunk);
    struct paged *p = calloc(1, sizeof *p + (size_t)nchunks * sizeof(struct chunk));
    pthread_mutex_lock(&dp.pt.mu);
    int ok = p && demand_start_locked() == 0;
    pthread_mutex_unlock(&dp.pt.mu);
    CUresult rc = ok ? managed_at_home(dptr, bytes, dev) : CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_SUCCESS) {
        *p = (struct paged){.base = *dptr, .size = bytes, .dev = dev, .nchunks = nchunks};
        pthread_mutex_lock(&dp.pt.mu);
        if (vp_allocs_insert_locked(&dp.allocs, p->base, p->size, p)) rc = CUDA_ERROR_OUT_OF_MEMORY;
        pthread_mutex_unlock(&dp.pt.mu);
        if (rc != CUDA_SUCCESS) vp_drv_free(*dptr);
    }
    if (rc != CUDA_SUCCESS) {
        free(p);
        atomic_fetch_sub(&dp.ps[dev].paged, bytes);
        return rc;
    }
    return CUDA_SUCCESS;
}

/* Takes p out of the books (mu held): the queue forgets it, the pager
 * thread lets it go, the table drops it before the driver frees (the
 * address may be handed to another thread's allocation as soon as it
 * does). */
static void unlist_locked(struct paged *p)
{
    p->gone = 1;
    for (size_t i = 0, j = dp.qhead; i < dp.qlen; i++, j = (j + 1) % QCAP)
        if (queue[j].p == p) queue[j].p = NULL;
    while (p->busy) pthread_cond_wait(&dp.pt.done_cv, &dp.pt.mu);
    vp_allocs_remove_locked(&dp.allocs, p->base);
}

static int demand_free(CUdeviceptr dptr, CUresult *rc, uint64_t *bytes)
{
    if (!atomic_load_explicit(&dp.allocs.n, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&dp.pt.mu);
    struct paged *p = find_locked(dptr);
    if (!p || p->base != dptr || p->gone) {
        pthread_mutex_unlock(&dp.pt.mu);
        return 0;
    }
    unlist_locked(p);
    pthread_mutex_unlock(&dp.pt.mu);

    *rc = vp_drv_free(dptr);
    *bytes = p->size;
    pthread_mutex_lock(&dp.pt.mu);
    if (*rc != CUDA_SUCCESS) {
        p->gone = 0;
        vp_allocs_insert_locked(&dp.allocs, p->base, p->size, p);
        pthread_mutex_unlock(&dp.pt.mu);
        return 1;
    }
    uint64_t resident = 0;
    for (uint32_t ci = 0; ci < p->nchunks; ci++)
        if (p->ch[ci].state == C_IN) resident += chunk_bytes(p, ci);
    pthread_mutex_unlock(&dp.pt.mu);
    if (resident) vp_acct_release(p->dev, VP_KIND_resident, resident);
    atomic_fetch_sub(&dp.ps[p->dev].paged, p->size);
    free(p);
    return 1;
}

static int demand_owns(CUdeviceptr a) { return vp_allocs_owns(&dp.allocs, &dp.pt.mu, a); }

static int demand_span(uint64_t *lo, uint64_t *hi) { return vp_allocs_span(&dp.allocs, lo, hi); }

/* The chunks a use at tick t of address a in p asks for are noted and,
 * those on the host, queued for the pager thread. Returns 1 when one was
 * queued. mu held. */
static int request_locked(struct paged *p, uint64_t a, uint64_t t)
{
    uint64_t first, cnt;
    int queued = 0;
    vp_policy_demand_range(p->size, a - p->base, vp_opt.chunk, vp_policy_touch_most(vp_cap_of(p->dev)), &first,
                           &cnt);
    for (uint64_t ci = first; ci < first + cnt; ci++) {
        struct chunk *ch = &p->ch[ci];
        if (ch->last_use == t) continue; /* seen through another pointer */
        ch->prev_use = ch->last_use;
        ch->last_use = t;
        if (ch->state != C_IN) count(&dp.ps[p->dev].remote_estimate, chunk_bytes(p, (uint32_t)ci));
        if (ch->state != C_HOST) continue;
        if (dp.qlen == QCAP) {
            count(&dp.ps[p->dev].queue_drops, 1);
            continue;
        }
        queue[(dp.qhead + dp.qlen++) % QCAP] = (struct req){p, (uint32_t)ci};
        ch->state = C_QUEUED;
        queued = 1;
    }
    return queued;
}

/* A kernel's uses queue what it touches (no driver call on the launching
 * thread); nothing is fenced: what is not resident is read remotely. */
static int demand_op_begin(const struct vp_op *op)
{
    /* while capturing: recorded into a graph, not run now */
    if (!op->use || !op->n || atomic_load(&dp.pt.capturing)) return 0;
    pthread_mutex_lock(&dp.pt.mu);
    uint64_t t = ++dp.tick;
    int queued = 0;
    for (size_t j = 0; j < op->n; j++) {
        struct paged *p = find_locked(op->ptrs[j]);
        if (p && !p->gone) queued |= request_locked(p, op->ptrs[j], t);
    }
    if (queued) pthread_cond_signal(&dp.pt.work_cv);
    pthread_mutex_unlock(&dp.pt.mu);
    return 0;
}

static void demand_op_end(CUstream s, int per_thread) { (void)s, (void)per_thread; }

static void demand_capture(int delta) { vp_pager_thread_capture(&dp.pt, delta); }

static int demand_reclaim(int dev, enum vp_kind kind, uint64_t bytes)
{
    return atomic_load(&dp.allocs.n) ? vp_pager_thread_reclaim(&dp.pt, dev, kind, bytes) : -1;
}

static void demand_report(int json, vp_emit_fn emit, void *ctx_, vp_report_extra_fn extra)
{
    vp_report_begin(json, emit, ctx_, "demand");
    int first = 1;
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        if (!atomic_load(&dp.ps[d].paged_peak)) continue;
        vp_report_device(json, emit, ctx_, first, d);
#define VP_X(name, doc) vp_report_field(json, emit, ctx_, #name, atomic_load(&dp.ps[d].name));
        VP_PAGE_STATS(VP_X)
#undef VP_X
        if (extra) extra(json, emit, ctx_, d);
        vp_report_device_end(json, emit, ctx_);
        first = 0;
    }
    vp_report_end(json, emit, ctx_);
}

static void demand_shutdown(void) { vp_pager_thread_stop(&dp.pt); }

static void demand_lock(void) { pthread_mutex_lock(&dp.pt.mu); }

static void demand_unlock(void) { pthread_mutex_unlock(&dp.pt.mu); }

static void demand_reset_child(void)
{
    /* the parent's allocations and thread are not ours: forget them (their
     * records leak, as the parent's device memory does for the child) */
    vp_pager_thread_reset_child(&dp.pt);
    vp_allocs_forget(&dp.allocs);
    dp.qhead = dp.qlen = 0;
    memset(dp.ctx, 0, sizeof dp.ctx);
    memset(dp.stream, 0, sizeof dp.stream);
    memset(dp.have_start, 0, sizeof dp.have_start);
    memset(dp.keeps, 0, sizeof dp.keeps);
    for (int d = 0; d < VP_MAX_DEVICES; d++) atomic_store(&dp.alloc_stream[d], NULL);
    dp.ctx_dev = -1;
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
#define VP_X(name, doc) atomic_store(&dp.ps[d].name, 0);
        VP_PAGE_STATS(VP_X)
#undef VP_X
    }
}

const struct vp_pager_ops vp_pager_demand = {
    .mode = "demand",
    .pages = 1,
    .alloc = demand_alloc,
    .free = demand_free,
    .owns = demand_owns,
    .span = demand_span,
    .op_begin = demand_op_begin,
    .op_end = demand_op_end,
    .capture = demand_capture,
    .reclaim = demand_reclaim,
    .report = demand_report,
    .shutdown = demand_shutdown,
    .lock = demand_lock,
    .unlock = demand_unlock,
    .reset_child = demand_reset_child,
};
