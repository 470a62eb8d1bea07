/* table.h - the page table's file: one recorded step of a program, as
 * text, written at exit and read at start (VPAGE_TABLE, to come) and by
 * the offline tool (tools/vpage-table.c).
 *
 * Format (version 2; version 1, read too, has no ORDER). Lines end with
 * '\n'; fields are separated by one space; numbers are decimal, without
 * sign.
 *
 *   vpage-table 2              the magic and the version
 *   fingerprint HEX16          vp_table_fingerprint of the allocations and kernels below
 *   piece BYTES                bytes of a piece (the last of an allocation may be shorter)
 *   other BYTES                device bytes the step holds outside paged memory (optional)
 *   alloc BYTES ORDER          one line per paged allocation the step touches: its size and
 *                              its order of making among the program's paged allocations
 *                              (from 0; addresses differ between runs, orders do not),
 *                              orders increasing; allocation k is the k-th of these lines
 *   kernel NAME                one line per kernel, numbered from 0 in order; NAME is
 *                              printable ASCII without spaces, at most 191 bytes
 *   op K NS SPAN...            one line per launch of the step, in order: kernel number K,
 *                              its time on the device in nanoseconds, and the pieces it
 *                              touches, each SPAN "A:F-L" (allocation A, its pieces F to L)
 *                              with a final "w" when the launch may write them; at most
 *                              VP_TABLE_MAX_SPANS spans
 *   end                        the last line: a file without it is cut short, and refused
 *
 * Contract
 *   vp_table_parse accepts exactly this, within the limits below, and
 *   refuses anything else with a reason (a static string) and no partial
 *   result: a truncated, corrupt or hostile file costs a message, never a
 *   crash, a hang or an unbounded allocation (it is fuzzed:
 *   tests/fuzz/fuzz_table.c). Memory is the caller's once parsed
 *   (vp_table_free). No locks, no driver calls, no global state.
 */
#ifndef VPAGE_BOOKS_TABLE_H
#define VPAGE_BOOKS_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/vp.h"

#define VP_TABLE_VERSION 2 /* written; 1 is read too */
#define VP_TABLE_MAX_ALLOCS (1u << 20)
#define VP_TABLE_MAX_KERNELS (1u << 20)
#define VP_TABLE_MAX_OPS (1u << 22)
#define VP_TABLE_MAX_SPANS 64   /* of one op */
#define VP_TABLE_MAX_PIECES (1u << 24) /* of one allocation */
#define VP_TABLE_NAME VP_KERNEL_NAME
#define VP_TABLE_MAX_BYTES (1ull << 30) /* of a file read */

struct vp_table_span {
    uint32_t alloc, first, last;
    uint8_t write;
};

struct vp_table_op {
    uint32_t kernel;
    uint64_t dur_ns;
    uint32_t first_span, nspans; /* spans[first_span .. first_span + nspans) */
};

struct vp_table {
    unsigned version;
    uint64_t fingerprint, piece, other;
    size_t nallocs, nkernels, nops, nspans;
    uint64_t *alloc_bytes;              /* nallocs */
    uint32_t *alloc_order;              /* nallocs (version 1: k for allocation k) */
    char (*kernel)[VP_TABLE_NAME];      /* nkernels */
    struct vp_table_op *ops;            /* nops */
    struct vp_table_span *spans;        /* nspans */
};

/* Whether a kernel name keeps byte c in a table: printable ASCII but the
 * space (the recorder writes '_' for any other). */
static inline int vp_table_name_byte(unsigned char c) { return c > ' ' && c <= '~'; }

/* The fingerprint of t's program: FNV-1a over the allocation sizes (8
 * bytes each, little-endian; from version 2 each followed by its order,
 * 4 bytes) and the kernel names (each with its NUL). */
uint64_t vp_table_fingerprint(const struct vp_table *t);

/* Parses len bytes of text into t (zeroed first). Returns 0, or -1 with
 * *why set and t empty. */
int vp_table_parse(const char *text, size_t len, struct vp_table *t, const char **why);

/* Writes t as text into buf (NUL-terminated when len > 0); returns the
 * length the whole text needs, like snprintf. */
size_t vp_table_write(const struct vp_table *t, char *buf, size_t len);

/* Pieces of allocation a (a < t->nallocs). */
uint64_t vp_table_pieces(const struct vp_table *t, uint32_t a);

void vp_table_free(struct vp_table *t);

#endif
