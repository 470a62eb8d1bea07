/* launch.c - see launch.h. */
#include "launch.h"

#include <string.h>

#include "graphs.h"
#include "pager.h"

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

struct scan {
    uint64_t lo, hi;
    uint64_t v[VP_LAUNCH_MAX_PTRS];
    int full; /* more words than v holds */
    struct vp_op op;
};

static int add(struct scan *s, uint64_t x)
{
    if (s->op.n == VP_LAUNCH_MAX_PTRS) return s->full = s->op.all = 1, -1;
    s->v[s->op.n++] = x;
    return 0;
}

/* The words of one parameter of sz bytes at src (offset off in the
 * parameter buffer). */
static void scan_param(struct scan *s, const char *src, uint32_t sz, uint32_t off)
{
    size_t before = s->op.n;
    for (uint32_t o = 0; o + 8 <= sz; o += 8) {
        uint64_t x;
        memcpy(&x, src + o, 8);
        if (x >= s->lo && x < s->hi && add(s, x)) return;
    }
    if (sz != sizeof(CUtensorMap) || off % 64 != 0) return;
    /* a TMA descriptor: its address as recorded when it was made */
    uint64_t a = vp_registry_tmap_addr(src);
    if (a && a >= s->lo && a < s->hi && add(s, a)) return;
    /* one that was not seen made, with no pointer in it either: paged
     * memory cannot be ruled out */
    if (!a && s->op.n == before) s->op.all = 1;
    if (a) s->op.tmaps_known++;
    else s->op.tmaps_unknown++;
}

int vp_pager_launch(struct vp_kernel *k, void **params, void **extra)
{
    const struct vp_pager_ops *pg = vp_pager();
    struct scan s;
    if (vp_likely(!pg->span(&s.lo, &s.hi))) return 0;
    memset(&s.op, 0, sizeof s.op);
    s.full = 0;
    s.op.ptrs = s.v;
    s.op.what = k ? k->name : "kernel";
    const char *buf = NULL;
    size_t buflen = 0;
    int known = k && atomic_load(&k->layout) == VP_LAYOUT_KNOWN && k->nparams > 0;
    if (known && !params && (!extra || !(buf = packed_params(extra, &buflen)))) known = 0;
    if (!known) { /* its pointers cannot be read: it may touch anything */
        s.op.all = 1;
        return pg->op_begin(&s.op);
    }
    s.op.use = 1;
    for (int i = 0; i < k->nparams && !s.full; i++) {
        uint32_t sz = k->param_size[i];
        const char *src = params ? params[i] : buf + k->param_off[i];
        if (!params && (uint64_t)k->param_off[i] + sz > buflen) break;
        if (src) scan_param(&s, src, sz, k->param_off[i]);
    }
    if (vp_graphs_capturing()) vp_graphs_note(s.v, s.op.n, s.lo, s.hi);
    return pg->op_begin(&s.op);
}
