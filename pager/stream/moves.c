/* moves.c - a round's moves: copies (both directions at once, on the
 * pager's two streams), hashes (pager/hash.h), then remaps of the
 * program's addresses on the pager's helpers, and the books after.
 *
 * Between the unmap and the map of a move the address maps nothing; the
 * fences (fence.c) keep every operation that may touch it away. A move
 * that fails leaves the piece where its data is current: an out-move stays
 * resident (out = 2), an in-move does not come.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../../common/options.h"
#include "../../common/trace.h"
#include "../../driver/exec.h"
#include "../../driver/vmm.h"
#include "../replay.h"
#include "internal.h"

/* Makes dev current on the pager thread, with a stream each way. */
int use_device(int dev)
{
    if (dev == sp.ctx_dev) return 0;
    if (vp_drv_use_primary_ctx(&sp.ctx[dev], dev)) return -1;
    if (!sp.s_in[dev] && vp_drv_stream_new(&sp.s_in[dev], 0) != CUDA_SUCCESS) return -1;
    if (!sp.s_out[dev] && vp_drv_stream_new(&sp.s_out[dev], 0) != CUDA_SUCCESS) return -1;
    sp.ctx_dev = dev;
    return 0;
}

/* The program's address of a move's piece. */
static CUdeviceptr move_va(const struct move *m) { return m->a->base + piece_off(m->a, m->i); }

/* Orders moves by direction, then address. */
static int by_place(const void *x, const void *y)
{
    const struct move *a = x, *b = y;
    if (a->out != b->out) return a->out < b->out ? -1 : 1;
    if (a->bare != b->bare) return a->bare < b->bare ? -1 : 1;
    return move_va(a) < move_va(b) ? -1 : move_va(a) > move_va(b);
}

/* Gives an in-move's slot back to the free list (its move failed). */
static void unslot(int dev, struct move *m)
{
    give_slot(dev, m->slot);
    m->slot = NULL;
}

/* Whether dev's hash kernel is loaded (loads it the first time; the
 * device is current). Pager thread. */
static int hash_ready(int dev)
{
    if (!vp_opt.stream_hash) return 0;
    if (!sp.hash_tried[dev]) {
        sp.hash_tried[dev] = 1;
        CUresult rc = vp_drv_load_kernel(vp_hash_ptx, "vp_hash", &sp.hash_fn[dev]);
        if (rc == CUDA_SUCCESS) rc = vp_drv_stream_new(&sp.s_hash[dev], 1);
        if (rc != CUDA_SUCCESS) {
            sp.hash_fn[dev] = NULL;
            sp.s_hash[dev] = NULL;
            vp_log(VP_WARN, "stream: the hash kernel could not be loaded on device %d (CUresult %d); every piece "
                            "operations touched is copied back when it leaves", dev, (int)rc);
        }
    }
    return sp.hash_fn[dev] != NULL;
}

/* Starts the hash of len bytes at src (device memory) into out (pinned
 * host memory, HSTRIDE words) on stream s. */
static CUresult launch_hash(int dev, CUdeviceptr src, uint64_t len, uint64_t *out, CUstream s)
{
    uint64_t n = len / 8;
    CUdeviceptr o = (CUdeviceptr)(uintptr_t)out;
    void *args[3] = {&src, &n, &o};
    CUresult rc = vp_drv_launch(sp.hash_fn[dev], vp_hash_blocks(n), VP_HASH_THREADS, s, args);
    if (rc == CUDA_SUCCESS) count(&sp.ss[dev].hashes, 1);
    return rc;
}

/* Copies out-move m's slot back to its host memory on dev's out stream. */
static CUresult copy_back(int dev, struct move *m)
{
    struct salloc *a = m->a;
    CUresult rc = vp_drv_copy(a->home + piece_off(a, m->i), m->slot->va, piece_len(a, m->i), sp.s_out[dev]);
    m->copied = rc == CUDA_SUCCESS;
    return rc;
}

/* Issues the copies of the moves m[0..n) (pieces marked P_MOVING, their
 * allocations busy) on dev's two streams, both directions at once, and
 * records ev[0..2] after them (in, out, hashes). With hbuf (pinned host
 * memory, HSTRIDE words a move) and the hash kernel loaded: a piece coming
 * in whose hash is not known is hashed after its copy, and a touched piece
 * leaving is hashed instead of copied (remap copies it if it changed).
 * mu not held. Returns 0, or -1 when nothing was issued (every move then
 * fails softly: out ones stay, in ones do not come). */
int issue_copies(int dev, struct move *m, size_t n, CUevent ev[3], uint64_t *hbuf)
{
    if (use_device(dev)) {
        driver_error("making the device current", CUDA_ERROR_INVALID_CONTEXT, dev);
        for (size_t j = 0; j < n; j++) {
            if (m[j].out) m[j].out = 2;
            else m[j].slot = NULL;
        }
        return -1;
    }
    int hashes = hbuf && hash_ready(dev);
    for (size_t j = 0; j < n; j++) {
        struct salloc *a = m[j].a;
        struct piece *p = &a->pc[m[j].i];
        uint64_t off = piece_off(a, m[j].i), len = piece_len(a, m[j].i);
        CUresult rc = CUDA_SUCCESS;
        m[j].hashing = m[j].have_hash = m[j].copied = 0;
        if (m[j].out) {
            /* a touched piece: hashed now, copied in remap if it changed */
            if (p->dirty && hashes)
                m[j].hashing = launch_hash(dev, m[j].slot->va, len, hbuf + j * HSTRIDE, sp.s_hash[dev]) == CUDA_SUCCESS;
            if (p->dirty && !m[j].hashing) rc = copy_back(dev, &m[j]);
        } else {
            m[j].slot = slot_get(dev, len);
            if (m[j].slot) rc = vp_drv_copy(m[j].slot->va, a->home + off, len, sp.s_in[dev]);
            if (m[j].slot && rc == CUDA_SUCCESS && hashes && !p->hashed)
                m[j].hashing = launch_hash(dev, m[j].slot->va, len, hbuf + j * HSTRIDE, sp.s_in[dev]) == CUDA_SUCCESS;
        }
        if (rc != CUDA_SUCCESS) {
            driver_error("copying a piece", rc, dev);
            if (m[j].out) m[j].out = 2; /* stays resident */
            else unslot(dev, &m[j]);
        }
    }
    CUstream st[3] = {sp.s_in[dev], sp.s_out[dev], sp.s_hash[dev]};
    for (int k = 0; k < 3; k++) {
        if (!st[k]) { /* no hash stream: nothing on it */
            ev[k] = NULL;
            continue;
        }
        if (!ev[k] || vp_drv_record(ev[k], st[k]) != CUDA_SUCCESS) {
            /* no event: wait here */
            if (vp_drv_sync(st[k]) != CUDA_SUCCESS) return -2;
            ev[k] = NULL;
        }
    }
    return 0;
}

/* After the hashes of m[0..n) (hbuf, as issue_copies took them): a leaving
 * piece whose hash is the one of its host memory leaves without a copy;
 * one that changed, or whose host memory's hash is not known, is copied
 * back now and waited for (if that fails, it stays resident). mu not held. */
static void settle_hashes(int dev, struct move *m, size_t n, const uint64_t *hbuf)
{
    int copies = 0;
    for (size_t j = 0; j < n; j++) {
        if (!m[j].hashing) continue;
        struct piece *p = &m[j].a->pc[m[j].i];
        vp_hash_combine(hbuf + j * HSTRIDE, vp_hash_blocks(piece_len(m[j].a, m[j].i) / 8), m[j].h);
        m[j].have_hash = 1;
        if (m[j].out != 1 || (p->hashed && p->hash[0] == m[j].h[0] && p->hash[1] == m[j].h[1])) continue;
        if (copy_back(dev, &m[j]) != CUDA_SUCCESS) {
            driver_error("copying a piece", CUDA_ERROR_UNKNOWN, dev);
            m[j].out = 2;
        } else
            copies = 1;
    }
    if (!copies || vp_drv_sync(sp.s_out[dev]) == CUDA_SUCCESS) return;
    driver_error("waiting for the copies of pieces", CUDA_ERROR_UNKNOWN, dev);
    for (size_t j = 0; j < n; j++)
        if (m[j].out == 1 && m[j].copied) m[j].out = 2;
}

/* The runs of a round's moves to remap: run k is m[runs[2k]..runs[2k+1]). */
struct remap_job {
    int dev;
    struct move *m;
    size_t *runs;
    size_t nruns;
};

/* Remaps run k of job: neighbouring pieces moving the same way. Each run
 * touches only its own moves; stats are atomic. A helper or the pager
 * thread, mu not held. */
static void remap_run(void *arg, size_t k)
{
    struct remap_job *job = arg;
    struct move *m = job->m;
    int dev = job->dev;
    size_t j = job->runs[2 * k], e = job->runs[2 * k + 1];
    if (vp_drv_set_ctx(sp.ctx[dev]) != CUDA_SUCCESS) {
        for (size_t q = j; q < e; q++) m[q].failed = 2; /* nothing was touched */
        driver_error("making the device current for a remap", CUDA_ERROR_INVALID_CONTEXT, dev);
        return;
    }
    CUdeviceptr first = move_va(&m[j]);
    uint64_t span = move_va(&m[e - 1]) + piece_len(m[e - 1].a, m[e - 1].i) - first;
    /* a bare in-move has nothing to unmap; a bare out-move maps nothing */
    int unmap = !(m[j].bare && !m[j].out), map = !(m[j].bare && m[j].out);
    double u0 = now_s();
    int whole = unmap && e - j > 1 && vp_drv_unmap(first, span) == CUDA_SUCCESS;
    if (unmap) count(&sp.ss[dev].unmap_calls, 1);
    int mapped = 1;
    for (size_t q = j; q < e; q++) {
        struct salloc *a = m[q].a;
        uint64_t off = piece_off(a, m[q].i), len = piece_len(a, m[q].i);
        CUresult r = CUDA_SUCCESS;
        if (unmap && !whole) {
            if (e - j > 1) count(&sp.ss[dev].unmap_calls, 1);
            r = vp_drv_unmap(a->base + off, len);
        }
        if (r == CUDA_SUCCESS && map)
            r = vp_drv_map(a->base + off, len, m[q].out ? a->pc[m[q].i].host : m[q].slot->h);
        if (r != CUDA_SUCCESS) {
            mapped = 0;
            m[q].failed = 1;
        }
    }
    double u1 = now_s();
    count(&sp.ss[dev].unmap_ns, (uint64_t)((u1 - u0) * 1e9));
    /* access: for the run at once, else a piece at a time */
    if (map && (!mapped || vp_drv_allow(first, span, dev) != CUDA_SUCCESS))
        for (size_t q = j; q < e; q++)
            if (!m[q].failed && vp_drv_allow(move_va(&m[q]), piece_len(m[q].a, m[q].i), dev) != CUDA_SUCCESS) {
                vp_drv_unmap(move_va(&m[q]), piece_len(m[q].a, m[q].i));
                m[q].failed = 1;
            }
    count(m[j].out ? &sp.ss[dev].map_out_ns : &sp.ss[dev].map_in_ns, (uint64_t)((now_s() - u1) * 1e9));
    for (size_t q = j; q < e; q++) {
        if (!m[q].failed) continue;
        struct salloc *a = m[q].a;
        uint64_t off = piece_off(a, m[q].i), len = piece_len(a, m[q].i);
        if (m[q].failed == 1) {
            driver_error("remapping a piece", CUDA_ERROR_UNKNOWN, dev);
            /* put back what was there: the data it holds is current (a
             * bare piece coming in stays bare) */
            CUmemGenericAllocationHandle back = m[q].out ? m[q].slot->h : a->pc[m[q].i].host;
            vp_drv_unmap(a->base + off, len);
            if ((!m[q].bare || m[q].out) && vp_drv_map_for(a->base + off, len, back, dev) != CUDA_SUCCESS)
                vp_error("stream: piece at %#llx of device %d could not be mapped again; kernels touching it "
                         "will fault", (unsigned long long)(a->base + off), dev);
        }
        if (m[q].out) m[q].out = 2;
        else unslot(dev, &m[q]);
    }
}

/* Maps the addresses of the bare in-moves of m[0..n) (their copies
 * issued) to their slots now, while the copies run: the pieces stay
 * P_MOVING until the copies are waited for, so no operation vpage sees
 * touches them before, and the remap after the copies has nothing left to
 * do for them. A piece whose map fails is left to that remap. The device
 * is current; mu not held. */
void map_ins_early(int dev, struct move *m, size_t n)
{
    double t0 = now_s();
    uint64_t k = 0;
    for (size_t j = 0; j < n; j++) {
        struct move *v = &m[j];
        v->early = 0;
        if (v->out || !v->slot || !v->bare) continue;
        CUdeviceptr va = move_va(v);
        uint64_t len = piece_len(v->a, v->i);
        if (vp_drv_map(va, len, v->slot->h) != CUDA_SUCCESS) continue;
        if (vp_drv_allow(va, len, dev) != CUDA_SUCCESS) {
            vp_drv_unmap(va, len);
            continue;
        }
        v->early = 1;
        k++;
    }
    count(&sp.ss[dev].mapped_early, k);
    count(&sp.ss[dev].map_in_ns, (uint64_t)((now_s() - t0) * 1e9));
}

/* Waits for the copies of m[0..n) (issue_copies returned rc; ev: the
 * events of those to wait for), then moves the program's addresses to the
 * other memory; traced as event `what` (common/trace.h). mu not held. */
void remap(int dev, struct move *m, size_t n, CUevent ev[3], int rc, const uint64_t *hbuf, const char *what)
{
    double t0 = now_s();
    CUresult r = CUDA_SUCCESS;
    for (int k = 0; k < 3 && rc == 0 && r == CUDA_SUCCESS; k++)
        if (ev[k]) r = vp_drv_wait(ev[k]);
    if (rc == -2 || r != CUDA_SUCCESS) {
        driver_error("waiting for the copies of pieces", r, dev);
        for (size_t j = 0; j < n; j++) {
            m[j].hashing = 0;
            if (m[j].out == 1) m[j].out = 2;
            if (!m[j].out && m[j].early) { /* back to mapping nothing, as it came */
                vp_drv_unmap(move_va(&m[j]), piece_len(m[j].a, m[j].i));
                m[j].early = 0;
            }
            if (!m[j].out && m[j].slot) unslot(dev, &m[j]);
        }
    }
    if (hbuf) settle_hashes(dev, m, n, hbuf);
    double t1 = now_s();
    count(&sp.ss[dev].copy_ns, (uint64_t)((t1 - t0) * 1e9));
    /* neighbouring pieces moving the same way (of one allocation, or of
     * neighbouring allocations of one arena) are unmapped with one call
     * and given access with one call. The driver may refuse a range over
     * several mappings: then one call a piece. The runs are remapped on
     * the pager's helpers at once (remap_run) */
    qsort(m, n, sizeof *m, by_place);
    size_t runs[2 * ROUND_MOVES];
    struct remap_job job = {dev, m, runs, 0};
    for (size_t j = 0; j < n;) {
        size_t e = j + 1;
        if (m[j].out == 2 || (!m[j].out && (!m[j].slot || m[j].early))) { /* nothing to remap */
            j = e;
            continue;
        }
        while (e < n && m[e].out == m[j].out && m[e].bare == m[j].bare && (m[e].out || m[e].slot) && !m[e].early &&
               m[e].a->arena == m[j].a->arena &&
               move_va(&m[e]) == move_va(&m[e - 1]) + piece_len(m[e - 1].a, m[e - 1].i))
            e++;
        runs[2 * job.nruns] = j;
        runs[2 * job.nruns + 1] = e;
        job.nruns++;
        j = e;
    }
    vp_pool_run(&sp.pool, job.nruns, remap_run, &job);
    if (vp_trace_on())
        vp_trace(what, "\t%d\t%zu\t%llu\t%llu", dev, n, (unsigned long long)((t1 - t0) * 1e6),
                 (unsigned long long)((now_s() - t1) * 1e6));
}

/* Copies, then remaps, with no overlap (reclaims). */
void make_moves(int dev, struct move *m, size_t n)
{
    CUevent none[3] = {NULL, NULL, NULL};
    int rc = issue_copies(dev, m, n, none, NULL);
    remap(dev, m, n, none, rc, NULL, "round");
}

/* Ends the moves m[0..n) and their round (issued with at least one move;
 * its out-moves may have ended ahead, leaving n 0). mu held. */
void finish_locked(int dev, struct move *m, size_t n)
{
    finish_moves_locked(dev, m, n);
    sp.moving_any--;
    count(&sp.ss[dev].rounds, 1);
}

void finish_moves_locked(int dev, struct move *m, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        struct salloc *a = m[j].a;
        struct piece *p = &a->pc[m[j].i];
        uint64_t len = piece_len(a, m[j].i);
        /* the hash taken is that of its host memory once it left (copied
         * or unchanged) or came in; not if it stayed (its host memory may
         * be older than the slot) */
        if (m[j].have_hash && (m[j].out == 1 || (!m[j].out && m[j].slot))) {
            memcpy(p->hash, m[j].h, sizeof p->hash);
            p->hashed = 1;
        }
        if (m[j].out == 1) {
            if (vp_trace_on())
                vp_trace("out", "\t%d\t%#llx\t%u\t%llu\t%d", dev, (unsigned long long)a->base, m[j].i,
                         (unsigned long long)len, m[j].copied);
            /* host memory written without a hash taken of it: not known */
            if (m[j].copied && !m[j].have_hash) p->hashed = 0;
            count(m[j].copied ? &sp.ss[dev].bytes_writeback
                  : p->dirty  ? &sp.ss[dev].bytes_unchanged
                              : &sp.ss[dev].bytes_dropped,
                  len);
            if (!p->dirty && p->ahead) count(&sp.ss[dev].dropped_ahead, len);
            count(&sp.ss[dev].moves_out, 1);
            p->bare = m[j].bare;
            slot_put_locked(dev, m[j].slot);
            p->slot = NULL;
            p->state = P_HOST;
        } else if (m[j].out == 2) {
            p->state = P_DEV; /* did not leave: still dirty if it was */
            a->busy--;
            continue;
        } else if (m[j].slot) {
            if (vp_trace_on())
                vp_trace("in", "\t%d\t%#llx\t%u\t%llu\t%d\t%llu\t%d", dev, (unsigned long long)a->base, m[j].i,
                         (unsigned long long)len, p->ahead, (unsigned long long)(p->ahead ? p->ahead_at : 0),
                         p->ahead ? p->ahead_cls : -1);
            count(&sp.ss[dev].bytes_in, len);
            vp_replay_came_in(dev, len);
            if (p->ahead) count(&sp.ss[dev].bytes_ahead, len);
            count(&sp.ss[dev].moves_in, 1);
            p->bare = 0;
            p->slot = m[j].slot;
            p->state = P_DEV;
        } else {
            p->state = P_HOST;
            p->requested = 0;
        }
        p->dirty = 0;
        a->busy--;
    }
    pthread_cond_broadcast(&sp.pt.done_cv);
}

