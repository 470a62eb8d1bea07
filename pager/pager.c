/* pager.c - see pager.h: the choice, and the off pager. */
#include "pager.h"

#include "../books/weights.h"
#include "../common/options.h"
#include "graphs.h"
#include "shared.h"

static CUresult off_alloc(enum vp_hook_id hook, CUdeviceptr *dptr, size_t bytes)
{
    (void)hook, (void)dptr, (void)bytes;
    return CUDA_ERROR_NOT_SUPPORTED;
}

static int off_free(CUdeviceptr dptr, CUresult *rc, uint64_t *bytes)
{
    (void)dptr, (void)rc, (void)bytes;
    return 0;
}

static int off_owns(CUdeviceptr p)
{
    (void)p;
    return 0;
}

static int off_span(uint64_t *lo, uint64_t *hi)
{
    (void)lo, (void)hi;
    return 0;
}

static int off_op_begin(const struct vp_op *op)
{
    (void)op;
    return 0;
}

static void off_op_end(CUstream stream, int per_thread) { (void)stream, (void)per_thread; }

static void off_capture(int delta) { (void)delta; }

static int off_reclaim(int dev, enum vp_kind kind, uint64_t bytes)
{
    (void)dev, (void)kind, (void)bytes;
    return -1;
}

static void off_report(int json, vp_emit_fn emit, void *ctx, vp_report_extra_fn extra)
{
    (void)extra;
    vp_report_begin(json, emit, ctx, "off");
    vp_report_end(json, emit, ctx);
}

static void nothing(void) {}

const struct vp_pager_ops vp_pager_off = {
    .mode = "off",
    .pages = 0,
    .alloc = off_alloc,
    .free = off_free,
    .owns = off_owns,
    .span = off_span,
    .op_begin = off_op_begin,
    .op_end = off_op_end,
    .capture = off_capture,
    .reclaim = off_reclaim,
    .report = off_report,
    .shutdown = nothing,
    .lock = nothing,
    .unlock = nothing,
    .reset_child = nothing,
};

static const struct vp_pager_ops *chosen = &vp_pager_off;

const struct vp_pager_ops *vp_pager(void) { return chosen; }

void vp_pager_choose(int paging)
{
    chosen = paging == VP_PAGING_STREAM ? &vp_pager_stream : paging == VP_PAGING_DEMAND ? &vp_pager_demand
                                                                                       : &vp_pager_off;
}

int vp_pager_free(CUdeviceptr dptr, CUresult *rc, uint64_t *bytes)
{
    if (!chosen->free(dptr, rc, bytes)) return 0;
    if (*rc == CUDA_SUCCESS) vp_weights_written(dptr, *bytes);
    return 1;
}

int vp_pager_op_begin(const uint64_t *ptrs, size_t n, int all, const char *what)
{
    uint64_t lo, hi;
    if (vp_likely(!chosen->span(&lo, &hi))) return 0;
    if (vp_graphs_capturing()) vp_graphs_note(ptrs, n, lo, hi);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (ptrs[i] >= lo && ptrs[i] < hi) j++;
    if (!j && !all) return 0;
    struct vp_op op = {.ptrs = ptrs, .n = n, .all = all, .use = 0, .what = what};
    return chosen->op_begin(&op);
}

int vp_pager_graph_begin(CUgraphExec exec)
{
    uint64_t lo, hi;
    if (vp_likely(!chosen->span(&lo, &hi))) return 0;
    void *ref;
    struct vp_op op = {.all = 1, .what = "graph"};
    op.ptrs = vp_graphs_take(exec, &op.n, &ref);
    op.use = op.graph = op.ptrs != NULL;
    int r = chosen->op_begin(&op);
    vp_graphs_release(ref);
    return r;
}
