/* pager.h - the pager interface: one table of operations, chosen once at
 * start from VPAGE_PAGING.
 *
 * Contract
 *   A pager owns paged allocations: device memory whose home is host RAM
 *   (counted against VPAGE_PAGED_LIMIT) and whose resident part it keeps
 *   under the cap (kind "resident", books/account.h). Three implement the
 *   table below:
 *     vp_pager_off     VPAGE_PAGING=off: owns nothing, pages nothing;
 *     vp_pager_demand  VPAGE_PAGING=demand: managed memory, chunks the
 *                      launches touch prefetched by a thread of its own
 *                      (pager/demand.h);
 *     vp_pager_stream  VPAGE_PAGING=stream: host-located physical memory,
 *                      pieces remapped into device slots ahead of use
 *                      (pager/stream.h).
 *   vp_pager_choose() picks one in vp_init (core/init.c), before the first
 *   allocation; vp_pager() is that one ever after (vp_pager_off before), so
 *   nothing above dispatches on the mode.
 *
 *   The pager measures and acts; what it brings in, keeps and sends out is
 *   chosen by pure functions of policy/ (policy/README.md).
 *
 *   Operations: every kernel launch, copy, memset and graph replay the
 *   hooks see is an operation. op_begin is called before it is issued with
 *   the addresses it carries (pager/launch.h reads them out of a kernel's
 *   parameters); when it returns 1, op_end must follow on the same thread,
 *   after the operation was issued, whatever its result. A pager that
 *   fences (stream) keeps the pieces of what an operation touches in place
 *   from op_begin until the operation has completed on the device.
 *
 *   Threads: every entry may be called from any of the program's threads,
 *   concurrently. Locks: each pager has its own, last in the lock order
 *   (core/init.c); lock/unlock/reset_child serve the fork handler.
 */
#ifndef VPAGE_PAGER_PAGER_H
#define VPAGE_PAGER_PAGER_H

#include <stddef.h>
#include <stdint.h>

#include "../books/account.h"
#include "../common/hooks.h"
#include "../common/vp.h"

/* One operation of the program (see contract). */
struct vp_op {
    const uint64_t *ptrs; /* the device addresses it carries */
    size_t n;
    int all;              /* it may touch any paged allocation (its pointers cannot be read) */
    int use;              /* a kernel: its touches are uses the policy learns from */
    int graph;            /* a graph replay: its uses are the captured set's (pager/graphs.h),
                           * not a launch to record */
    const char *what;     /* its name in the trace */
    uint32_t tmaps_known, tmaps_unknown; /* TMA descriptors among its parameters (stats) */
};

/* More fields for device dev's object in a pager's report (the
 * stream-ordered cache's, pager/apool.h). */
typedef void (*vp_report_extra_fn)(int json, vp_emit_fn emit, void *ctx, int dev);

struct vp_pager_ops {
    const char *mode; /* "off", "demand", "stream" */
    int pages;        /* 0 for the off pager */
    /* A paged allocation of bytes on the current device. hook: the entry
     * point a refusal by the paged limit names (VP_HOOK_COUNT: a quiet
     * try, neither said nor counted). CUDA_ERROR_NOT_SUPPORTED asks the
     * caller for a plain allocation instead. */
    CUresult (*alloc)(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes);
    /* If dptr is one of its allocations: frees it after the work fenced on
     * it, sets *rc and *bytes (the size asked), returns 1. Else 0. */
    int (*free)(CUdeviceptr dptr, CUresult *rc, uint64_t *bytes);
    /* True when p lies inside one of its allocations. */
    int (*owns)(CUdeviceptr p);
    /* [*lo, *hi) covers every allocation it has; 0 when it has none (one
     * relaxed load: the launch hook's fast way out). */
    int (*span)(uint64_t *lo, uint64_t *hi);
    int (*op_begin)(const struct vp_op *op);
    void (*op_end)(CUstream stream, int per_thread);
    /* A stream capture begun (+1) or ended (-1) by the calling thread. */
    void (*capture)(int delta);
    /* Makes room under the cap for bytes of unpageable memory of kind on
     * dev by sending resident memory out, and reserves them for the caller
     * before the pager can fill the room again. Returns 0 when reserved,
     * -1 when not (nothing to give, or not enough). */
    int (*reclaim)(int dev, enum vp_kind kind, uint64_t bytes);
    /* Its stats: a JSON object, or table lines; extra adds fields to each
     * device's part. */
    void (*report)(int json, vp_emit_fn emit, void *ctx, vp_report_extra_fn extra);
    void (*shutdown)(void); /* stops its threads (at exit) */
    void (*lock)(void);
    void (*unlock)(void);
    void (*reset_child)(void); /* the child after fork: the parent's allocations are not its own */
};

extern const struct vp_pager_ops vp_pager_off, vp_pager_demand, vp_pager_stream;

/* The pager in force. */
const struct vp_pager_ops *vp_pager(void);

/* Chooses the pager for paging (enum vp_paging, common/options.h). */
void vp_pager_choose(int paging);

/* Frees dptr if it is a paged allocation (the pager's free): its bytes are
 * then no weight file's copy (books/weights.h). Returns 1 when it was. */
int vp_pager_free(CUdeviceptr dptr, CUresult *rc, uint64_t *bytes);

/* Around a copy or memset carrying the device addresses ptrs[0..n), or a
 * graph replay (all): an operation that uses nothing. Returns 1 when
 * vp_pager()->op_end must follow. */
int vp_pager_op_begin(const uint64_t *ptrs, size_t n, int all, const char *what);

/* Around a replay of the executable graph exec: an operation on every
 * paged allocation whose uses are the addresses captured into it, when
 * they are known (pager/graphs.h). Returns 1 when vp_pager()->op_end must
 * follow. */
int vp_pager_graph_begin(CUgraphExec exec);

#endif
