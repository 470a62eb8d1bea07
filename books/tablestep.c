/* tablestep.c - see tablestep.h. */
#include "tablestep.h"

#include <stdlib.h>
#include <string.h>

#include "../policy/replay.h"

/* The pieces of span sp into f's touch list from k (each once a launch). */
static uint32_t add_span(struct vp_table_step *f, const struct vp_table_span *sp, uint32_t k, uint8_t *seen)
{
    for (uint32_t x = sp->first; x <= sp->last; x++) {
        uint32_t id = (uint32_t)(f->base[sp->alloc] + x);
        if (sp->write) f->dirty[id] = 1;
        if (seen[id]) continue;
        seen[id] = 1;
        f->touch[k++] = id;
    }
    return k;
}

/* Room for the arrays of np pieces and nt touches. */
static int arrays(struct vp_table_step *f, const struct vp_table *t, uint64_t np, uint64_t nt)
{
    f->bytes = malloc((np ? np : 1) * sizeof *f->bytes);
    f->dirty = calloc(np ? np : 1, 1);
    f->touch = malloc((nt ? nt : 1) * sizeof *f->touch);
    f->ops = malloc((t->nops ? t->nops : 1) * sizeof *f->ops);
    return f->bytes && f->dirty && f->touch && f->ops ? 0 : -1;
}

/* Orders timed launches by kernel, then time. */
static int by_kernel_time(const void *x, const void *y)
{
    const struct vp_table_op *a = *(const struct vp_table_op *const *)x, *b = *(const struct vp_table_op *const *)y;
    if (a->kernel != b->kernel) return a->kernel < b->kernel ? -1 : 1;
    return a->dur_ns < b->dur_ns ? -1 : a->dur_ns > b->dur_ns;
}

/* Per kernel, the median time of its timed launches (0: none timed) into
 * med[nkernels]. Returns 0, or -1 when out of memory. */
static int kernel_medians(const struct vp_table *t, uint64_t *med)
{
    const struct vp_table_op **timed = malloc((t->nops ? t->nops : 1) * sizeof *timed);
    if (!timed) return -1;
    size_t n = 0;
    for (size_t i = 0; i < t->nops; i++)
        if (t->ops[i].dur_ns && t->ops[i].kernel < t->nkernels) timed[n++] = &t->ops[i];
    qsort(timed, n, sizeof *timed, by_kernel_time);
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && timed[e]->kernel == timed[i]->kernel) e++;
        med[timed[i]->kernel] = timed[i + (e - i) / 2]->dur_ns;
        i = e;
    }
    free(timed);
    return 0;
}

/* The launches of f that CUPTI did not time (its records name only some
 * launches, PyTorch's among them) take the median time of their kernel's
 * timed launches (f->estimated of them); a kernel never timed keeps 0. */
static int estimate_untimed(const struct vp_table *t, struct vp_table_step *f)
{
    uint64_t *med = calloc(t->nkernels ? t->nkernels : 1, sizeof *med);
    if (!med || kernel_medians(t, med)) {
        free(med);
        return -1;
    }
    for (size_t i = 0; i < t->nops; i++) {
        const struct vp_table_op *o = &t->ops[i];
        if (o->dur_ns || o->kernel >= t->nkernels || !med[o->kernel]) continue;
        f->ops[i].dur_s = (double)med[o->kernel] * 1e-9;
        f->compute_ns += med[o->kernel];
        f->estimated++;
    }
    free(med);
    return 0;
}

int vp_table_step_make(const struct vp_table *t, struct vp_table_step *f)
{
    uint64_t np = 0, nt = 0;
    memset(f, 0, sizeof *f);
    f->base = malloc((t->nallocs + 1) * sizeof *f->base);
    for (size_t a = 0; f->base && a < t->nallocs; a++) {
        f->base[a] = np;
        np += vp_table_pieces(t, (uint32_t)a);
    }
    for (size_t j = 0; j < t->nspans; j++) nt += t->spans[j].last - t->spans[j].first + 1;
    uint8_t *seen = np <= UINT32_MAX ? calloc(np ? np : 1, 1) : NULL;
    if (!f->base || !seen || nt > UINT32_MAX || arrays(f, t, np, nt)) {
        free(seen);
        vp_table_step_free(f);
        return -1;
    }
    for (size_t a = 0; a < t->nallocs; a++)
        for (uint64_t x = 0, n = vp_table_pieces(t, (uint32_t)a); x < n; x++)
            f->bytes[f->base[a] + x] = x + 1 < n ? t->piece : t->alloc_bytes[a] - x * t->piece;
    uint32_t k = 0;
    for (size_t i = 0; i < t->nops; i++) {
        const struct vp_table_op *o = &t->ops[i];
        uint32_t first = k;
        for (uint32_t j = 0; j < o->nspans; j++) k = add_span(f, &t->spans[o->first_span + j], k, seen);
        for (uint32_t j = first; j < k; j++) seen[f->touch[j]] = 0;
        f->ops[i] = (struct vp_step_op){(double)o->dur_ns * 1e-9, first, k - first};
        f->compute_ns += o->dur_ns;
    }
    for (uint64_t x = 0; x < np; x++) {
        f->written += f->dirty[x] ? f->bytes[x] : 0;
        f->touched += f->bytes[x];
    }
    free(seen);
    if (estimate_untimed(t, f)) {
        vp_table_step_free(f);
        return -1;
    }
    f->s = (struct vp_step){t->nops, np, f->ops, f->touch, f->bytes, f->dirty};
    return 0;
}

int vp_table_step_thin(const struct vp_table *t, struct vp_table_step *f, uint8_t *op_thin)
{
    size_t np = f->s.npieces;
    uint8_t *thin = calloc(np ? np : 1, 1), *used = calloc(np ? np : 1, 1);
    if (!thin || !used) {
        free(thin);
        free(used);
        return -1;
    }
    f->thin_ops = f->thin_bytes = 0;
    for (size_t i = 0; i < t->nops; i++) {
        struct vp_step_op *o = &f->ops[i];
        int is = t->ops[i].dur_ns && vp_replay_thin(o->dur_s, vp_step_op_bytes(&f->s, i), t->piece);
        for (uint32_t j = 0; j < o->n; j++) (is ? thin : used)[f->touch[o->first + j]] = 1;
        if (is) o->n = 0, f->thin_ops++;
        if (op_thin) op_thin[i] = (uint8_t)is;
    }
    for (size_t x = 0; x < np; x++) {
        thin[x] &= !used[x];
        f->thin_bytes += thin[x] ? f->bytes[x] : 0;
    }
    free(used);
    free(f->thin);
    f->thin = thin;
    return 0;
}

void vp_table_step_free(struct vp_table_step *f)
{
    free(f->thin);
    free(f->ops);
    free(f->touch);
    free(f->bytes);
    free(f->base);
    free(f->dirty);
    memset(f, 0, sizeof *f);
}
