/* mem.c - see mem.h. */
#include "mem.h"

#include <stdatomic.h>
#include <stdio.h>

#include "../books/account.h"
#include "../books/ptrmap.h"
#include "../books/weights.h"
#include "../common/log.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../driver/alloc.h"
#include "../driver/exec.h"
#include "../driver/query.h"
#include "../driver/vmm.h"
#include "../pager/apool.h"
#include "../pager/pager.h"

static struct vp_map ptrs = VP_MAP_INIT;    /* device pointer -> record */
static struct vp_map handles = VP_MAP_INIT; /* VMM handle -> record */
static struct vp_map arrays = VP_MAP_INIT;  /* CUarray -> record */
static struct vp_map pools = VP_MAP_INIT;   /* pool -> {reserved bytes, dev} */
/* Held from a driver pool's usage read to its books' update (allocations,
 * trims, refreshes): a pool that another thread grows or trims meanwhile
 * would be counted past the cap for a moment (issue 20). Taken before the
 * maps' locks. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;

static atomic_uint_fast64_t refusals_printed, unhooked_devices, graph_over_cap;
static atomic_int graph_mem_seen[VP_MAX_DEVICES];   /* allocations captured into graphs */
static atomic_uint_fast64_t graph_counted[VP_MAX_DEVICES];

#define POOL_GRANULE (2ull << 20)

/* vp_acct_reserve, after asking the pager to give up resident chunks when
 * the cap is reached: paged memory yields to memory that cannot be paged
 * (the pager reserves the room it freed for the caller, so that it cannot
 * fill it again first). */
static int reserve_room(int dev, enum vp_kind kind, uint64_t bytes)
{
    if (vp_acct_reserve(dev, kind, bytes) == 0) return 0;
    return vp_pager()->reclaim(dev, kind, bytes);
}

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static int usable_device(int dev)
{
    if (dev >= 0 && dev < VP_MAX_DEVICES) return 1;
    if (dev >= VP_MAX_DEVICES)
        vp_log_limited(VP_WARN, &unhooked_devices, "device %d is past the %d vpage keeps books for: not counted",
                       dev, VP_MAX_DEVICES);
    return 0;
}

static void refuse_msg(enum vp_hook_id hook, int dev, uint64_t bytes)
{
    vp_stat_add(hook, VP_CTR_refused, 1);
    char a[32], b[32], c[32], kinds[256];
    size_t n = 0;
    kinds[0] = '\0';
    for (int k = 0; k < VP_KIND_COUNT; k++) {
        uint64_t cur = vp_acct_get(dev, (enum vp_kind)k).cur;
        if (!cur) continue;
        int w = snprintf(kinds + n, sizeof kinds - n, "%s%s %s", n ? ", " : "", vp_kind_name((enum vp_kind)k),
                         vp_fmt_bytes(cur, a, sizeof a));
        if (w < 0 || (size_t)w >= sizeof kinds - n) break;
        n += (size_t)w;
    }
    /* under paging only cuMemAlloc memory and the default pool's move: say
     * so where the program allocates otherwise (a PyTorch allocator setting
     * it can change) */
    const char *hint = vp_opt.paging == VP_PAGING_OFF || hook == VP_HOOK_cuMemAlloc_v2
                           ? ""
                           : "; only cuMemAlloc memory and cuMemAllocAsync from the default pool are paged, this "
                             "allocation counts whole (PyTorch: leave PYTORCH_CUDA_ALLOC_CONF without "
                             "expandable_segments)";
    vp_log_limited(VP_WARN, &refusals_printed,
                   "%s of %s on device %d refused: %s of the %s cap (VPAGE_CAP) already counted (%s)%s; "
                   "returning CUDA_ERROR_OUT_OF_MEMORY",
                   vp_hook_name(hook), vp_fmt_bytes(bytes, b, sizeof b), dev,
                   vp_fmt_bytes(vp_acct_get(dev, VP_KIND_COUNT).cur, a, sizeof a),
                   vp_fmt_bytes(vp_cap_of(dev), c, sizeof c), n ? kinds : "nothing", hint);
}

static CUresult finish(enum vp_hook_id hook, CUresult rc, uint64_t bytes)
{
    if (rc == CUDA_SUCCESS) vp_stat_add(hook, VP_CTR_bytes, bytes);
    else vp_stat_add(hook, VP_CTR_failed, 1);
    return rc;
}

/* Moves a reservation of est bytes to the actual size. Returns 0, or -1 if
 * the actual size passes the cap (est is then still counted). */
static int settle(int dev, enum vp_kind kind, uint64_t est, uint64_t actual)
{
    if (actual <= est) {
        vp_acct_release(dev, kind, est - actual);
        return 0;
    }
    if (reserve_room(dev, kind, actual - est) == 0) return 0;
    return -1;
}

/* Records what an allocation that succeeded counts. */
static void record(struct vp_map *m, uint64_t key, struct vp_rec r)
{
    if (vp_map_put(m, key, r)) vp_error("out of host memory recording an allocation: it stays counted until exit");
    vp_stat_live_add((enum vp_hook_id)r.hook, r.bytes);
}

/* Frees key with call, taking its record out first and putting it back if
 * the driver refuses (see ptrmap.h); releases what was counted. */
static CUresult uncount_and_free(struct vp_map *m, uint64_t key, enum vp_hook_id hook,
                                 CUresult (*call)(uint64_t, void *), void *ctx)
{
    struct vp_rec r;
    int had = vp_map_take(m, key, &r);
    CUresult rc = call(key, ctx);
    if (rc != CUDA_SUCCESS) {
        if (had) vp_map_put(m, key, r);
        return finish(hook, rc, 0);
    }
    /* a pool pointer freed with cuMemFree returns to its pool, which keeps
     * the bytes reserved: the pool gauge follows the pool, not the pointer */
    if (had && r.kind != VP_KIND_pool) vp_acct_release(r.dev, (enum vp_kind)r.kind, r.bytes);
    if (had) vp_stat_live_sub((enum vp_hook_id)r.hook, r.bytes);
    if (had && m == &ptrs) vp_weights_written(key, r.bytes); /* freed bytes are no one's copy */
    return rc;
}

/* After a call that succeeded with an estimated reservation: moves it to
 * the actual size and records key, or, if the actual size passes the cap,
 * undoes the allocation and refuses it. */
static CUresult settle_or_undo(struct vp_map *m, uint64_t key, enum vp_hook_id hook, int dev, enum vp_kind kind,
                               uint64_t est, uint64_t actual, CUresult (*undo)(uint64_t, void *))
{
    if (settle(dev, kind, est, actual)) {
        undo(key, NULL);
        vp_acct_release(dev, kind, est);
        refuse_msg(hook, dev, actual);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    record(m, key, (struct vp_rec){actual, 0, (int16_t)dev, (uint8_t)kind, (uint16_t)hook});
    return finish(hook, CUDA_SUCCESS, actual);
}

static CUresult free_ptr(uint64_t key, void *ctx)
{
    (void)ctx;
    return vp_drv_free((CUdeviceptr)key);
}

static CUresult release_handle(uint64_t key, void *ctx)
{
    (void)ctx;
    return vp_drv_release((CUmemGenericAllocationHandle)key);
}

static CUresult destroy_array(uint64_t key, void *ctx)
{
    (void)ctx;
    return vp_drv_array_destroy((CUarray)(uintptr_t)key);
}

/* ---- plain allocations ---- */

static CUresult counted_alloc(enum vp_hook_id hook, enum vp_kind kind, CUdeviceptr *dptr, size_t bytes,
                              CUresult (*call)(void *ctx), void *ctx)
{
    int dev = vp_drv_current_device();
    if (!usable_device(dev)) return finish(hook, call(ctx), bytes);
    if (reserve_room(dev, kind, bytes)) {
        refuse_msg(hook, dev, bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult rc = call(ctx);
    if (rc != CUDA_SUCCESS) {
        vp_acct_release(dev, kind, bytes);
        return finish(hook, rc, bytes);
    }
    record(&ptrs, *dptr, (struct vp_rec){bytes, 0, (int16_t)dev, (uint8_t)kind, (uint16_t)hook});
    return finish(hook, rc, bytes);
}

struct alloc_args {
    CUdeviceptr *dptr;
    size_t bytes;
    unsigned int flags;
};

static CUresult call_alloc(void *p)
{
    struct alloc_args *a = p;
    return vp_drv_alloc(a->dptr, a->bytes);
}

static CUresult call_managed(void *p)
{
    struct alloc_args *a = p;
    return vp_drv_alloc_managed(a->dptr, a->bytes, a->flags);
}

CUresult vp_mem_alloc(CUdeviceptr *dptr, size_t bytes)
{
    const enum vp_hook_id hook = VP_HOOK_cuMemAlloc_v2;
    CUresult rc = vp_pager()->alloc(hook, dptr, bytes);
    switch (rc) {
    case CUDA_ERROR_NOT_SUPPORTED: break; /* not paged: a plain allocation */
    case CUDA_ERROR_OUT_OF_MEMORY: vp_stat_add(hook, VP_CTR_refused, 1); return rc; /* the paged limit, said */
    case CUDA_SUCCESS: vp_stat_live_add(hook, bytes); /* fall through */
    default: return finish(hook, rc, bytes);
    }
    struct alloc_args a = {dptr, bytes, 0};
    return counted_alloc(hook, VP_KIND_alloc, dptr, bytes, call_alloc, &a);
}

CUresult vp_mem_alloc_managed(CUdeviceptr *dptr, size_t bytes, unsigned int flags)
{
    struct alloc_args a = {dptr, bytes, flags};
    return counted_alloc(VP_HOOK_cuMemAllocManaged, VP_KIND_managed, dptr, bytes, call_managed, &a);
}

CUresult vp_mem_alloc_pitch(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned int elem)
{
    const enum vp_hook_id hook = VP_HOOK_cuMemAllocPitch_v2;
    int dev = vp_drv_current_device();
    if (!usable_device(dev)) return finish(hook, vp_drv_alloc_pitch(dptr, pitch, width, height, elem), 0);
    /* the driver pads rows to its pitch alignment (at most 512 bytes so far) */
    uint64_t est = round_up(width, 512) * (uint64_t)height;
    if (reserve_room(dev, VP_KIND_alloc, est)) {
        refuse_msg(hook, dev, est);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult rc = vp_drv_alloc_pitch(dptr, pitch, width, height, elem);
    if (rc != CUDA_SUCCESS) {
        vp_acct_release(dev, VP_KIND_alloc, est);
        return finish(hook, rc, 0);
    }
    return settle_or_undo(&ptrs, *dptr, hook, dev, VP_KIND_alloc, est, (uint64_t)*pitch * height, free_ptr);
}

/* A paged cuMemAlloc allocation freed through hook. */
static CUresult paged_freed(enum vp_hook_id hook, CUresult rc, uint64_t bytes)
{
    if (rc == CUDA_SUCCESS) vp_stat_live_sub(VP_HOOK_cuMemAlloc_v2, bytes);
    return finish(hook, rc, 0);
}

CUresult vp_mem_free(CUdeviceptr dptr)
{
    CUresult rc;
    uint64_t n;
    /* a block of the stream-ordered cache freed synchronously: after the
     * legacy stream's work, which waits for every blocking stream's */
    if (vp_apool_free(dptr, NULL, 0, &n)) {
        vp_stat_live_sub(VP_HOOK_cuMemAllocAsync, n);
        return CUDA_SUCCESS;
    }
    if (vp_pager_free(dptr, &rc, &n)) return paged_freed(VP_HOOK_cuMemFree_v2, rc, n);
    return uncount_and_free(&ptrs, dptr, VP_HOOK_cuMemFree_v2, free_ptr, NULL);
}

/* ---- pools ---- */

/* Re-reads a pool's reserved bytes and moves the pool gauge by the change.
 * prepaid: bytes already reserved for this growth (vp_mem_alloc_async); they
 * are turned into the actual growth, so nothing is counted twice. asked:
 * the growth those bytes were estimated for; how far the pool overshot it
 * (its growth step) is kept in aux and added to later estimates, so only a
 * pool's first growth can pass the cap before being undone. */
static void pool_sync(CUmemoryPool pool, int dev, uint64_t asked, uint64_t prepaid)
{
    uint64_t reserved, used;
    uint64_t key = (uint64_t)(uintptr_t)pool;
    if (!pool || vp_drv_pool_usage(pool, &reserved, &used)) {
        if (prepaid) vp_acct_release(dev, VP_KIND_pool, prepaid);
        return;
    }
    struct vp_rec old, now = {reserved, 0, (int16_t)dev, VP_KIND_pool, 0};
    int had = vp_map_swap(&pools, key, now, &old);
    uint64_t before = 0;
    if (had == 1) {
        before = old.bytes;
        now.dev = old.dev;
        now.aux = old.aux;
    }
    if (had >= 0 && asked && reserved > before + asked && reserved - before - asked > now.aux) {
        now.aux = reserved - before - asked;
        vp_debug("pool %p grows in steps: %llu bytes past a request", (void *)pool, (unsigned long long)now.aux);
    }
    if (had >= 0 && (now.aux || now.dev != dev)) vp_map_put(&pools, key, now);
    if (had < 0) reserved = before; /* could not record: count nothing new */
    uint64_t grew = reserved > before ? reserved - before : 0;
    uint64_t cover = grew < prepaid ? grew : prepaid;
    /* prepaid bytes sit on dev; the pool's bytes on now.dev (the same for
     * every pool vpage has seen so far) */
    if (grew > cover) vp_acct_force(now.dev, VP_KIND_pool, grew - cover);
    if (prepaid > cover) vp_acct_release(dev, VP_KIND_pool, prepaid - cover);
    if (reserved < before) vp_acct_release(now.dev, VP_KIND_pool, before - reserved);
}

struct pool_list {
    CUmemoryPool p[64];
    int dev[64];
    int n, want_dev;
};

static void collect_pool(uint64_t key, struct vp_rec *r, void *arg)
{
    struct pool_list *l = arg;
    if (l->n < 64 && (l->want_dev < 0 || r->dev == l->want_dev)) {
        l->p[l->n] = (CUmemoryPool)(uintptr_t)key;
        l->dev[l->n++] = r->dev;
    }
}

/* Re-reads every pool of dev (-1: of every device). Pools release memory at
 * synchronisation points vpage does not see. */
static void pools_refresh_locked(int dev)
{
    struct pool_list l = {.n = 0, .want_dev = dev};
    vp_map_each(&pools, collect_pool, &l);
    for (int i = 0; i < l.n; i++) pool_sync(l.p[i], l.dev[i], 0, 0);
}

static void pools_refresh(int dev)
{
    pthread_mutex_lock(&pool_mu);
    pools_refresh_locked(dev);
    pthread_mutex_unlock(&pool_mu);
}

struct alloc_async_args {
    enum vp_hook_id hook;
    CUdeviceptr *dptr;
    size_t bytes;
    CUmemoryPool pool;
    CUstream stream;
};

static CUresult call_alloc_async_cb(void *p)
{
    struct alloc_async_args *a = p;
    return vp_drv_alloc_async(a->hook, a->dptr, a->bytes, a->pool, a->stream);
}

/* cuMemAllocAsync from driver pool p, counted by what p reserves: what p
 * must grow by (beyond what it keeps unused, and its growth steps seen so
 * far) is paid for before the driver call, and what it did not grow by is
 * given back after it. Called with pool_mu held: no allocation or trim
 * through vpage changes p between its usage read and its books' update
 * (the driver's own release at a synchronisation only shrinks it). */
static CUresult pool_alloc_locked(enum vp_hook_id hook, int dev, CUmemoryPool p, CUdeviceptr *dptr, size_t bytes,
                                  CUmemoryPool pool, CUstream stream, int ptsz)
{
    uint64_t reserved = 0, used = 0, growth = round_up(bytes, POOL_GRANULE);
    if (vp_drv_pool_usage(p, &reserved, &used) == 0)
        growth = used + bytes > reserved ? round_up(used + bytes - reserved, POOL_GRANULE) : 0;
    struct vp_rec seen;
    uint64_t asked = growth;
    if (growth && vp_map_get(&pools, (uint64_t)(uintptr_t)p, &seen)) growth += seen.aux;
    if (growth && reserve_room(dev, VP_KIND_pool, growth)) {
        pools_refresh_locked(dev);
        if (reserve_room(dev, VP_KIND_pool, growth)) {
            refuse_msg(hook, dev, bytes);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    CUresult rc = vp_drv_alloc_async(hook, dptr, bytes, pool, stream);
    /* count what the pool holds now, paid for by the provisional growth */
    pool_sync(p, dev, asked, growth);
    if (rc != CUDA_SUCCESS) return finish(hook, rc, bytes);
    if (vp_acct_get(dev, VP_KIND_COUNT).cur > vp_cap_of(dev)) {
        /* the pool grew past its steps seen so far: give back what it
         * keeps unused, and if that is not enough, this allocation */
        vp_drv_pool_trim(p, 0);
        pool_sync(p, dev, 0, 0);
        if (vp_acct_get(dev, VP_KIND_COUNT).cur > vp_cap_of(dev)) {
            vp_drv_free_async(ptsz, *dptr, stream);
            vp_drv_sync(stream);
            vp_drv_pool_trim(p, 0);
            pool_sync(p, dev, 0, 0);
            refuse_msg(hook, dev, bytes);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    record(&ptrs, *dptr, (struct vp_rec){bytes, 0, (int16_t)dev, VP_KIND_pool, hook});
    return finish(hook, rc, bytes);
}

CUresult vp_mem_alloc_async(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes, CUmemoryPool pool,
                            CUstream stream)
{
    int dev = vp_drv_current_device();
    if (!usable_device(dev)) return finish(hook, vp_drv_alloc_async(hook, dptr, bytes, pool, stream), bytes);
    int ptsz = hook == VP_HOOK_cuMemAllocAsync_ptsz || hook == VP_HOOK_cuMemAllocFromPoolAsync_ptsz;
    if (vp_drv_capturing(stream, ptsz)) {
        /* a graph memory node: its memory comes with the graph's launch */
        atomic_store(&graph_mem_seen[dev], 1);
        return finish(hook, vp_drv_alloc_async(hook, dptr, bytes, pool, stream), bytes);
    }
    if (vp_pager()->pages && !pool && vp_drv_pool_is_default(dev)) {
        CUresult rc = vp_apool_alloc(dev, dptr, bytes, stream, ptsz);
        if (rc == CUDA_ERROR_OUT_OF_MEMORY) { /* the pager said why */
            vp_stat_add(hook, VP_CTR_refused, 1);
            return rc;
        }
        if (rc == CUDA_SUCCESS) vp_stat_live_add(hook, bytes);
        if (rc != CUDA_ERROR_NOT_SUPPORTED) return finish(hook, rc, bytes);
        /* else the driver's pool, counted whole */
    }
    CUmemoryPool p = pool ? pool : vp_drv_default_pool(dev);
    if (!p) { /* no pool to read: count the allocation itself, as cuMemAlloc's */
        struct alloc_async_args aa = {hook, dptr, bytes, pool, stream};
        return counted_alloc(hook, VP_KIND_alloc, dptr, bytes, call_alloc_async_cb, &aa);
    }
    pthread_mutex_lock(&pool_mu);
    CUresult rc = pool_alloc_locked(hook, dev, p, dptr, bytes, pool, stream, ptsz);
    pthread_mutex_unlock(&pool_mu);
    return rc;
}

struct free_async_args {
    enum vp_hook_id hook;
    CUstream stream;
};

static CUresult free_async_cb(uint64_t key, void *ctx)
{
    struct free_async_args *a = ctx;
    return vp_drv_free_async(a->hook == VP_HOOK_cuMemFreeAsync_ptsz, (CUdeviceptr)key, a->stream);
}

/* A pool pointer's bytes go back to its pool, which keeps them reserved (the
 * pool gauge changes when the pool shrinks); a cuMemAlloc pointer may be
 * freed this way too, in stream order, and counts as freed now. */
CUresult vp_mem_free_async(enum vp_hook_id hook, CUdeviceptr dptr, CUstream stream)
{
    /* paged memory (cuMemAlloc under VPAGE_PAGING) is not the driver's to
     * free in stream order: it is freed as cuMemFree would, after the work
     * fenced on it (stream mode) or a device synchronisation (managed) */
    CUresult rc;
    uint64_t n;
    if (vp_apool_free(dptr, stream, hook == VP_HOOK_cuMemFreeAsync_ptsz, &n)) {
        vp_stat_live_sub(VP_HOOK_cuMemAllocAsync, n);
        return finish(hook, CUDA_SUCCESS, 0);
    }
    if (vp_pager_free(dptr, &rc, &n)) return paged_freed(hook, rc, n);
    struct free_async_args a = {hook, stream};
    return uncount_and_free(&ptrs, dptr, hook, free_async_cb, &a);
}

CUresult vp_mem_pool_trim(CUmemoryPool pool, size_t keep)
{
    int cur = vp_drv_current_device();
    /* the default pool's allocations under paging are the cache's */
    if (vp_pager()->pages && usable_device(cur) && pool && pool == vp_drv_default_pool(cur) &&
        vp_drv_pool_is_default(cur))
        vp_apool_trim(cur);
    pthread_mutex_lock(&pool_mu);
    CUresult rc = vp_drv_pool_trim(pool, keep);
    struct vp_rec r;
    int dev = vp_map_get(&pools, (uint64_t)(uintptr_t)pool, &r) ? r.dev : cur;
    if (usable_device(dev)) pool_sync(pool, dev, 0, 0);
    pthread_mutex_unlock(&pool_mu);
    return finish(VP_HOOK_cuMemPoolTrimTo, rc, 0);
}

CUresult vp_mem_pool_attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value, int set)
{
    enum vp_hook_id hook = set ? VP_HOOK_cuMemPoolSetAttribute : VP_HOOK_cuMemPoolGetAttribute;
    CUresult rc = vp_drv_pool_attribute(pool, attr, value, set);
    int bytes_attr = attr == CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT || attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH ||
                     attr == CU_MEMPOOL_ATTR_USED_MEM_CURRENT || attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH;
    if (rc != CUDA_SUCCESS || !bytes_attr || !value || !pool || !vp_pager()->pages) return finish(hook, rc, 0);
    int cur = vp_drv_current_device();
    if (!usable_device(cur) || pool != vp_drv_default_pool(cur) || !vp_drv_pool_is_default(cur))
        return finish(hook, rc, 0);
    if (set) vp_apool_reset_high(cur, attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH);
    else *(cuuint64_t *)value += vp_apool_bytes(cur, attr == CU_MEMPOOL_ATTR_USED_MEM_CURRENT ||
                                                         attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                                                attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH ||
                                                    attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH);
    return finish(hook, rc, 0);
}

CUresult vp_mem_pool_destroy(CUmemoryPool pool)
{
    pthread_mutex_lock(&pool_mu);
    CUresult rc = vp_drv_pool_destroy(pool);
    struct vp_rec r;
    if (rc == CUDA_SUCCESS && vp_map_take(&pools, (uint64_t)(uintptr_t)pool, &r))
        vp_acct_release(r.dev, VP_KIND_pool, r.bytes);
    pthread_mutex_unlock(&pool_mu);
    return finish(VP_HOOK_cuMemPoolDestroy, rc, 0);
}

/* ---- VMM ---- */

CUresult vp_mem_create(CUmemGenericAllocationHandle *handle, size_t bytes, const CUmemAllocationProp *prop,
                       unsigned long long flags)
{
    const enum vp_hook_id hook = VP_HOOK_cuMemCreate;
    int dev = prop && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE ? prop->location.id : -1;
    if (!usable_device(dev)) /* host-located chunks (NCCL) are not device memory */
        return finish(hook, vp_drv_create(handle, bytes, prop, flags), 0);
    static atomic_int said;
    if (vp_opt.paging != VP_PAGING_OFF && !atomic_exchange(&said, 1))
        vp_warn("cuMemCreate device memory (PyTorch's expandable_segments:True, NCCL) is not paged under "
                "VPAGE_PAGING: it counts against the cap whole. The program maps tensors across its chunks, and a "
                "pointer a kernel gets does not say where its tensor ends, so vpage cannot tell which chunks a "
                "kernel touches");
    if (reserve_room(dev, VP_KIND_vmm, bytes)) {
        refuse_msg(hook, dev, bytes);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult rc = vp_drv_create(handle, bytes, prop, flags);
    if (rc != CUDA_SUCCESS) {
        vp_acct_release(dev, VP_KIND_vmm, bytes);
        return finish(hook, rc, 0);
    }
    record(&handles, *handle, (struct vp_rec){bytes, 0, (int16_t)dev, VP_KIND_vmm, hook});
    return finish(hook, rc, bytes);
}

CUresult vp_mem_release(CUmemGenericAllocationHandle handle)
{
    return uncount_and_free(&handles, handle, VP_HOOK_cuMemRelease, release_handle, NULL);
}

/* ---- arrays ---- */

static uint64_t format_bytes(CUarray_format f)
{
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT: return 4;
    default: return 16; /* block-compressed and packed formats: an upper bound */
    }
}

CUresult vp_mem_array_create(enum vp_hook_id hook, CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *d3,
                             const CUDA_ARRAY_DESCRIPTOR *d2)
{
    int dev = vp_drv_current_device();
    if (!usable_device(dev) || (!d3 && !d2)) return finish(hook, vp_drv_array_create(arr, d3, d2), 0);
    uint64_t w = d3 ? d3->Width : d2->Width, h = d3 ? d3->Height : d2->Height, d = d3 ? d3->Depth : 1;
    uint64_t ch = d3 ? d3->NumChannels : d2->NumChannels;
    CUarray_format f = d3 ? d3->Format : d2->Format;
    /* drivers pad arrays; reserve up to the next 2 MiB, settle to the truth after */
    uint64_t est = round_up(w * (h ? h : 1) * (d ? d : 1) * (ch ? ch : 1) * format_bytes(f), 2ull << 20);
    if (reserve_room(dev, VP_KIND_array, est)) {
        refuse_msg(hook, dev, est);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult rc = vp_drv_array_create(arr, d3, d2);
    if (rc != CUDA_SUCCESS) {
        vp_acct_release(dev, VP_KIND_array, est);
        return finish(hook, rc, 0);
    }
    uint64_t actual = vp_drv_array_bytes(*arr, dev);
    if (!actual) actual = est;
    return settle_or_undo(&arrays, (uint64_t)(uintptr_t)*arr, hook, dev, VP_KIND_array, est, actual, destroy_array);
}

CUresult vp_mem_array_destroy(CUarray arr)
{
    return uncount_and_free(&arrays, (uint64_t)(uintptr_t)arr, VP_HOOK_cuArrayDestroy, destroy_array, NULL);
}

/* ---- graph memory ---- */

static void graph_sync(int dev)
{
    uint64_t now = vp_drv_graph_reserved(dev);
    uint64_t before = atomic_exchange(&graph_counted[dev], now);
    if (now > before) vp_acct_force(dev, VP_KIND_graph, now - before);
    else if (now < before) vp_acct_release(dev, VP_KIND_graph, before - now);
}

void vp_mem_graph_launched(void)
{
    int dev = vp_drv_current_device();
    if (dev < 0 || dev >= VP_MAX_DEVICES || !atomic_load_explicit(&graph_mem_seen[dev], memory_order_relaxed))
        return;
    graph_sync(dev);
    char a[32], b[32];
    if (vp_acct_get(dev, VP_KIND_COUNT).cur > vp_cap_of(dev))
        vp_log_limited(VP_WARN, &graph_over_cap,
                       "graph memory on device %d brought the counted bytes to %s, past the %s cap (VPAGE_CAP): "
                       "graph launches are counted, not refused",
                       dev, vp_fmt_bytes(vp_acct_get(dev, VP_KIND_COUNT).cur, a, sizeof a),
                       vp_fmt_bytes(vp_cap_of(dev), b, sizeof b));
}

/* ---- what the program is told ---- */

CUresult vp_mem_get_info(size_t *free_b, size_t *total_b)
{
    size_t f = 0, t = 0;
    CUresult rc = vp_drv_mem_info(&f, &t);
    if (rc != CUDA_SUCCESS) return finish(VP_HOOK_cuMemGetInfo_v2, rc, 0);
    int dev = vp_drv_current_device();
    if (usable_device(dev) && vp_cap_of(dev) != VP_NO_CAP) {
        pools_refresh(dev);
        if (atomic_load(&graph_mem_seen[dev])) graph_sync(dev);
        uint64_t cap = vp_cap_of(dev), left = vp_acct_room(dev);
        if (cap < t) t = (size_t)cap;
        if (left < f) f = (size_t)left;
    }
    if (free_b) *free_b = f;
    if (total_b) *total_b = t;
    return rc;
}

CUresult vp_mem_device_total(size_t *bytes, CUdevice dev)
{
    CUresult rc = vp_drv_total_mem(bytes, dev);
    if (rc == CUDA_SUCCESS && bytes && vp_cap_of((int)dev) < *bytes) *bytes = (size_t)vp_cap_of((int)dev);
    return finish(VP_HOOK_cuDeviceTotalMem_v2, rc, 0);
}

/* ---- fork ---- */

void vp_mem_lock_all(void)
{
    pthread_mutex_lock(&pool_mu);
    pthread_mutex_lock(&ptrs.lock);
    pthread_mutex_lock(&handles.lock);
    pthread_mutex_lock(&arrays.lock);
    pthread_mutex_lock(&pools.lock);
    vp_apool_lock();
}

void vp_mem_unlock_all(void)
{
    vp_apool_unlock();
    pthread_mutex_unlock(&pools.lock);
    pthread_mutex_unlock(&arrays.lock);
    pthread_mutex_unlock(&handles.lock);
    pthread_mutex_unlock(&ptrs.lock);
    pthread_mutex_unlock(&pool_mu);
}

void vp_mem_reset_child(void)
{
    pthread_mutex_init(&pool_mu, NULL);
    vp_map_clear(&ptrs);
    vp_map_clear(&handles);
    vp_map_clear(&arrays);
    vp_map_clear(&pools);
    vp_apool_reset_child();
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        atomic_store(&graph_mem_seen[d], 0);
        atomic_store(&graph_counted[d], 0);
    }
    vp_acct_reset();
}
