/* fuzz_table.c - libFuzzer target for the page table's file (books/table.h).
 * Besides not crashing: what is refused says why, and what is accepted is
 * consistent (every span inside its allocation, every kernel number
 * known) and reads back the same after being written. Built by
 * scripts/fuzz.sh; replay.c runs the committed corpus through it in every
 * test run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../books/table.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vp_table t, back;
    const char *why = NULL;
    if (vp_table_parse((const char *)data, size, &t, &why) != 0) {
        if (!why || t.nops || t.ops) abort();
        return 0;
    }
    check(&t);
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
