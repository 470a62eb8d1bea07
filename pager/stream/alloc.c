/* alloc.c - streamed allocations made and freed, the report, fork, and the
 * stream pager's table of operations (pager/pager.h).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../../books/account.h"
#include "../../common/log.h"
#include "../../common/options.h"
#include "../../common/trace.h"
#include "../../driver/query.h"
#include "../../driver/vmm.h"
#include "../record.h"
#include "../replay.h"
#include "../stream.h"
#include "internal.h"

struct stream_pager sp = {
    .pt = VP_PAGER_THREAD_INIT,
    .pool = VP_POOL_INIT,
    .allocs = VP_ALLOCS_INIT,
    .ring_mu = PTHREAD_MUTEX_INITIALIZER,
    .ctx_dev = -1,
};
struct stream_ring ring;
struct round rounds[2];

/* The granularity both kinds of memory accept on dev (0: unknown). */
static uint64_t granularity(int dev)
{
    static atomic_uint_fast64_t gran[VP_MAX_DEVICES];
    uint64_t g = atomic_load(&gran[dev]);
    if (!g && (g = vp_drv_granularity(dev))) atomic_store(&gran[dev], g);
    return g;
}

/* Gives back pieces [0, made) of a, its home range and its program range. */
static void undo_alloc(struct salloc *a, uint32_t made)
{
    for (uint32_t i = 0; i < made; i++) {
        vp_drv_unmap(a->base + piece_off(a, i), piece_len(a, i));
        vp_drv_unmap(a->home + piece_off(a, i), piece_len(a, i));
        vp_drv_release(a->pc[i].host);
    }
    if (a->home) vp_drv_unreserve(a->home, a->span);
    if (a->base) range_give(a->base, a->span, a->arena);
}

/* Piece k of a: its home memory, mapped at home and at the program's
 * address, or (place) a slot there while the cap has room; its bytes are
 * undefined then, as cuMemAlloc's are: nothing to copy. Clears *place once
 * the cap is full. */
static CUresult make_piece(struct salloc *a, uint32_t k, int *place)
{
    uint64_t off = piece_off(a, k), len = piece_len(a, k);
    CUresult rc = premade_take(a->dev, len, &a->pc[k].host) ? CUDA_SUCCESS
                                                            : vp_drv_create_on(&a->pc[k].host, len, a->dev, 1);
    if (rc != CUDA_SUCCESS) return rc;
    struct slot *sl = *place ? slot_get(a->dev, len) : NULL;
    *place = sl != NULL;
    if ((rc = vp_drv_map_for(a->base + off, len, sl ? sl->h : a->pc[k].host, a->dev)) == CUDA_SUCCESS &&
        (rc = vp_drv_map_for(a->home + off, len, a->pc[k].host, a->dev)) != CUDA_SUCCESS)
        vp_drv_unmap(a->base + off, len);
    if (rc != CUDA_SUCCESS) {
        if (sl) give_slot(a->dev, sl);
        vp_drv_release(a->pc[k].host);
        return rc;
    }
    if (sl) {
        a->pc[k].slot = sl;
        a->pc[k].state = P_DEV;
        count(&sp.ss[a->dev].placed, len);
    }
    return CUDA_SUCCESS;
}

/* The program's range of a from an arena, the home range of its own, and
 * every piece. On failure nothing of it is left. */
static CUresult build(struct salloc *a, uint64_t g)
{
    uint32_t made = 0;
    a->base = range_take(a->span, g, &a->arena);
    CUresult rc = a->base ? vp_drv_reserve(&a->home, a->span, g) : CUDA_ERROR_OUT_OF_MEMORY;
    if (rc != CUDA_SUCCESS) a->home = 0;
    /* while all is resident (fit.c), a new allocation that fits is placed
     * too, so the state holds through a program's growth (a decode loop's
     * caching allocator makes blocks as the KV cache grows) */
    int place = vp_opt.stream_place == VP_PLACE_DEVICE || fit_active();
    for (; rc == CUDA_SUCCESS && made < a->npieces; made++)
        if ((rc = make_piece(a, made, &place)) != CUDA_SUCCESS) break;
    if (rc == CUDA_SUCCESS) return rc;
    for (uint32_t i = 0; i < made; i++)
        if (a->pc[i].slot) give_slot(a->dev, a->pc[i].slot);
    undo_alloc(a, made);
    driver_error("building a streamed allocation", rc, a->dev);
    return rc == CUDA_ERROR_OUT_OF_MEMORY ? rc : CUDA_ERROR_NOT_SUPPORTED;
}

/* The granularity of dev, or 0 (said once) when the driver gives none. */
static uint64_t granularity_or_say(int dev)
{
    static atomic_int said;
    uint64_t g = granularity(dev);
    if (!g && !atomic_exchange(&said, 1))
        vp_warn("stream: the driver gives no granularity for host-located memory on device %d; allocations "
                "there are not streamed", dev);
    return g;
}

static CUresult stream_alloc(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes)
{
    int dev = vp_drv_current_device();
    if (dev < 0 || dev >= VP_MAX_DEVICES || !bytes || !dptr || !vp_drv_vmm_usable()) return CUDA_ERROR_NOT_SUPPORTED;
    uint64_t g = granularity_or_say(dev);
    if (!g) return CUDA_ERROR_NOT_SUPPORTED;
    uint64_t span = round_up(bytes, g), piece = round_up(vp_opt.chunk, g);
    vp_replay_load();
    vp_record_start();
    if (vp_paged_take(&sp.ss[dev].streamed, span, dev, hook, &sp.ss[dev].refused)) return CUDA_ERROR_OUT_OF_MEMORY;
    uint32_t np = (uint32_t)((span + piece - 1) / piece);
    struct salloc *a = calloc(1, sizeof *a + (size_t)np * sizeof(struct piece));
    pthread_mutex_lock(&sp.pt.mu);
    int ok = a && stream_start_locked() == 0;
    pthread_mutex_unlock(&sp.pt.mu);
    CUresult rc = CUDA_ERROR_NOT_SUPPORTED;
    if (ok) {
        *a = (struct salloc){.size = bytes, .span = span, .piece = piece, .dev = dev, .npieces = np};
        premade_want(dev, piece, span);
        double t0 = now_s();
        rc = build(a, g);
        count(&sp.ss[dev].alloc_ns, (uint64_t)((now_s() - t0) * 1e9));
    }
    if (rc == CUDA_SUCCESS) {
        pthread_mutex_lock(&sp.pt.mu);
        if (vp_allocs_insert_locked(&sp.allocs, a->base, a->size, a)) rc = CUDA_ERROR_OUT_OF_MEMORY;
        else a->order = sp.next_order++;
        if (rc == CUDA_SUCCESS && vp_record_on()) vp_record_alloc(a->order, a->span, a->piece);
        if (rc == CUDA_SUCCESS) vp_replay_alloc(a->order, a->span, a->piece, dev);
        if (rc == CUDA_SUCCESS && !all_pieces_resident(a)) fit_leave_locked();
        pthread_mutex_unlock(&sp.pt.mu);
        if (rc != CUDA_SUCCESS) undo_alloc(a, np);
    }
    if (rc != CUDA_SUCCESS) {
        free(a);
        atomic_fetch_sub(&sp.ss[dev].streamed, span);
        return rc;
    }
    *dptr = a->base;
    if (vp_trace_on())
        vp_trace("alloc", "\t%d\t%#llx\t%llu\t%u\t%llu", dev, (unsigned long long)a->base, (unsigned long long)bytes,
                 np, (unsigned long long)piece);
    vp_gauge_move(&sp.ss[dev].streamed_peak, atomic_load(&sp.ss[dev].streamed), 1);
    return CUDA_SUCCESS;
}

static int stream_free(CUdeviceptr dptr, CUresult *rc, uint64_t *size)
{
    if (!atomic_load_explicit(&sp.allocs.n, memory_order_relaxed)) return 0;
    pthread_mutex_lock(&sp.pt.mu);
    struct salloc *a = find_locked(dptr);
    if (!a || a->base != dptr || a->gone) {
        pthread_mutex_unlock(&sp.pt.mu);
        return 0;
    }
    a->gone = 1;
    fit_quiet_locked();
    while (a->busy || a->pending) pthread_cond_wait(&sp.pt.done_cv, &sp.pt.mu);
    vp_allocs_remove_locked(&sp.allocs, a->base);
    pthread_mutex_unlock(&sp.pt.mu);
    /* the program's work on it ends before its memory goes, as with cuMemFree */
    int dev = a->dev;
    wait_done(a->ev_dev, a->serial);
    wait_done(sp.all_dev, sp.all_serial);
    for (uint32_t i = 0; i < a->npieces; i++)
        if (a->pc[i].pinned) uncount(&sp.ss[dev].pinned, piece_len(a, i));
    undo_alloc(a, a->npieces);
    pthread_mutex_lock(&sp.pt.mu);
    for (uint32_t i = 0; i < a->npieces; i++) /* the slots serve other pieces */
        if (a->pc[i].slot) slot_put_locked(dev, a->pc[i].slot);
    stream_check_locked("a free");
    pthread_mutex_unlock(&sp.pt.mu);
    /* the device's last streamed allocation: its free slots serve nothing */
    if (atomic_fetch_sub(&sp.ss[dev].streamed, a->span) == a->span) release_free_slots(dev);
    *size = a->size;
    if (vp_trace_on()) vp_trace("free", "\t%d\t%#llx", dev, (unsigned long long)a->base);
    free(a);
    *rc = CUDA_SUCCESS;
    return 1;
}

static int stream_owns(CUdeviceptr p) { return vp_allocs_owns(&sp.allocs, &sp.pt.mu, p); }

static int stream_span(uint64_t *lo, uint64_t *hi) { return vp_allocs_span(&sp.allocs, lo, hi); }

static int stream_reclaim(int dev, enum vp_kind kind, uint64_t bytes)
{
    /* this thread issuing an operation: the pager would wait for it */
    if (!atomic_load(&sp.allocs.n) || op_on_here()) return -1;
    return vp_pager_thread_reclaim(&sp.pt, dev, kind, bytes);
}

static void stream_report(int json, vp_emit_fn emit, void *ctx, vp_report_extra_fn extra)
{
    vp_report_begin(json, emit, ctx, "stream");
    int first = 1;
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        if (!atomic_load(&sp.ss[d].streamed_peak)) continue;
        vp_report_device(json, emit, ctx, first, d);
#define VP_X(name, doc) vp_report_field(json, emit, ctx, #name, atomic_load(&sp.ss[d].name));
        VP_STREAM_STATS(VP_X)
#undef VP_X
        vp_report_field(json, emit, ctx, "fit_ops", fit_ops());
        vp_replay_report(json, emit, ctx, d);
        if (extra) extra(json, emit, ctx, d);
        vp_report_device_end(json, emit, ctx);
        first = 0;
    }
    vp_report_end(json, emit, ctx);
}

static void stream_shutdown(void)
{
    vp_pager_thread_stop(&sp.pt);
    vp_pool_stop(&sp.pool);
    premade_stop();
}

static void stream_lock(void)
{
    pthread_mutex_lock(&sp.pt.mu);
    pthread_mutex_lock(&sp.ring_mu);
    premade_lock();
}

static void stream_unlock(void)
{
    premade_unlock();
    pthread_mutex_unlock(&sp.ring_mu);
    pthread_mutex_unlock(&sp.pt.mu);
}

/* The child after fork: the parent's allocations, threads, streams,
 * events and pinned memory are not its own; its address ranges neither
 * (their records leak, as the parent's device memory does for the child). */
static void stream_reset_child(void)
{
    vp_pager_thread_reset_child(&sp.pt);
    vp_pool_reset_child(&sp.pool);
    premade_reset_child();
    pthread_mutex_init(&sp.ring_mu, NULL);
    vp_allocs_forget(&sp.allocs);
    sp.moving_any = sp.global_pending = sp.eager_map = sp.ops_block = 0;
    sp.all_serial = 0;
    memset(sp.free_slots, 0, sizeof sp.free_slots);
    memset(&ring, 0, sizeof ring);
    memset(sp.ctx, 0, sizeof sp.ctx);
    memset(sp.s_in, 0, sizeof sp.s_in);
    memset(sp.s_out, 0, sizeof sp.s_out);
    memset(sp.round_ev, 0, sizeof sp.round_ev);
    memset(sp.round_hbuf, 0, sizeof sp.round_hbuf);
    memset(sp.hash_fn, 0, sizeof sp.hash_fn);
    memset(sp.hash_tried, 0, sizeof sp.hash_tried);
    memset(sp.s_hash, 0, sizeof sp.s_hash);
    rounds[0].live = rounds[1].live = 0;
    sp.holes = NULL;
    sp.nholes = sp.capholes = 0;
    sp.narenas = 0;
    sp.ctx_dev = -1;
    stream_fence_reset_child();
    fit_reset_child();
    vp_replay_reset_child();
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
#define VP_X(name, doc) atomic_store(&sp.ss[d].name, 0);
        VP_STREAM_STATS(VP_X)
#undef VP_X
    }
}

const struct vp_pager_ops vp_pager_stream = {
    .mode = "stream",
    .pages = 1,
    .alloc = stream_alloc,
    .free = stream_free,
    .owns = stream_owns,
    .span = stream_span,
    .op_begin = stream_op_begin,
    .op_end = stream_op_end,
    .capture = stream_capture,
    .reclaim = stream_reclaim,
    .report = stream_report,
    .shutdown = stream_shutdown,
    .lock = stream_lock,
    .unlock = stream_unlock,
    .reset_child = stream_reset_child,
};
