/* fuzz_table.c - libFuzzer target for the page table's file (books/table.h).
 * Besides not crashing: what is refused says why, and what is accepted is
 * consistent (every span inside its allocation, every kernel number
 * known), reads back the same after being written, and gives the replay
 * (pager/replay.c) a step it can index and order (books/tablestep.h,
 * policy/replay.h): each piece's uses ascending and within the step, each
 * touched piece once in the pin order. Built by
 * scripts/fuzz.sh; replay.c runs the committed corpus through it in every
 * test run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../books/table.h"
#include "../../books/tablestep.h"
#include "../../policy/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct vp_table *t)
{
    for (size_t i = 0; i < t->nops; i++) {
        const struct vp_table_op *o = &t->ops[i];
        if (o->kernel >= t->nkernels || o->first_span + (size_t)o->nspans > t->nspans) abort();
        for (uint32_t j = 0; j < o->nspans; j++) {
            const struct vp_table_span *s = &t->spans[o->first_span + j];
            if (s->alloc >= t->nallocs || s->first > s->last || s->last >= vp_table_pieces(t, s->alloc)) abort();
        }
    }
}

/* What the replay derives from an accepted table, with its thin launches
 * taken out when thin (VPAGE_TABLE_LEAVE_THIN): those touch nothing then,
 * and a piece only they touch is used by no launch. */
static void check_replay(const struct vp_table *t, int thin)
{
    struct vp_table_step f;
    if (vp_table_step_make(t, &f)) return; /* out of memory, or too many pieces: refused by the replay */
    uint8_t *op_thin = calloc(t->nops + 1, 1);
    if (!op_thin) abort();
    if (thin && !vp_table_step_thin(t, &f, op_thin))
        for (size_t i = 0; i < t->nops; i++)
            if (op_thin[i] && (f.ops[i].n || !t->ops[i].dur_ns)) abort();
    size_t np = f.s.npieces, nt = 0;
    for (size_t i = 0; i < f.s.nops; i++) nt += f.ops[i].n;
    uint32_t *start = malloc((np + 1) * sizeof *start), *uses = malloc((nt + 1) * sizeof *uses);
    uint32_t *by = malloc((np + 1) * sizeof *by);
    uint8_t *seen = calloc(np + 1, 1);
    if (!start || !uses || !by || !seen) abort();
    vp_replay_index(&f.s, start, uses);
    if (start[np] != nt) abort();
    for (size_t x = 0; f.thin && x < np; x++)
        if (f.thin[x] && start[x + 1] != start[x]) abort();
    for (size_t x = 0; x < np; x++)
        for (uint32_t j = start[x]; j < start[x + 1]; j++)
            if (uses[j] >= f.s.nops || (j > start[x] && uses[j] <= uses[j - 1])) abort();
    size_t n = vp_replay_pin_order(&f.s, start, uses, 32, by, NULL);
    for (size_t j = 0; j < n; j++) {
        if (by[j] >= np || seen[by[j]] || start[by[j] + 1] == start[by[j]]) abort();
        seen[by[j]] = 1;
    }
    free(start);
    free(uses);
    free(by);
    free(seen);
    free(op_thin);
    vp_table_step_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vp_table t, back;
    const char *why = NULL;
    if (vp_table_parse((const char *)data, size, &t, &why) != 0) {
        if (!why || t.nops || t.ops) abort();
        return 0;
    }
    check(&t);
    check_replay(&t, 0);
    check_replay(&t, 1);
    size_t n = vp_table_write(&t, NULL, 0);
    char *text = malloc(n + 1);
    if (!text || vp_table_write(&t, text, n + 1) != n) abort();
    if (vp_table_parse(text, n, &back, &why) != 0) abort();
    if (back.nops != t.nops || back.nspans != t.nspans || back.nallocs != t.nallocs || back.fingerprint != t.fingerprint)
        abort();
    free(text);
    vp_table_free(&back);
    vp_table_free(&t);
    return 0;
}
