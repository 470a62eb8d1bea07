/* tablestep.h - a page table file's step (books/table.h) as the planner's
 * step (policy/plan.h): every piece of the table's allocations numbered
 * from 0, allocation by allocation, with its bytes, and each launch's
 * pieces listed once.
 *
 * Contract
 *   vp_table_step_make reads a parsed table and fills f; the memory is f's
 *   until vp_table_step_free. A launch the table gives no time (CUPTI's
 *   records did not name it) of a kernel whose other launches have times
 *   takes the median of those: the step's compute then counts every
 *   launch of a kernel seen at all. Used by the pager's replay (pager/replay.c)
 *   and by the offline tool (tools/vpage-table.c). No locks, no driver
 *   calls, no global state.
 */
#ifndef VPAGE_BOOKS_TABLESTEP_H
#define VPAGE_BOOKS_TABLESTEP_H

#include <stdint.h>

#include "../policy/plan.h"
#include "table.h"

struct vp_table_step {
    struct vp_step s;       /* what the planner reads; its arrays are below */
    struct vp_step_op *ops; /* per launch: its time and pieces */
    uint32_t *touch;
    uint64_t *bytes;        /* per piece */
    uint64_t *base;         /* per allocation: its first piece */
    uint8_t *dirty;         /* per piece: a launch may write it */
    uint64_t compute_ns, touched, written; /* the step's: launch time, bytes touched, bytes written */
    uint64_t estimated; /* launches CUPTI did not time, given their kernel's median time */
    /* vp_table_step_thin's: the thin launches, the pieces they alone touch
     * (per piece, NULL before) and those pieces' bytes */
    uint64_t thin_ops, thin_bytes;
    uint8_t *thin;
};

/* Returns 0, or -1 when out of memory or the table has more than 2^32
 * pieces or touches (f is then freed). */
int vp_table_step_make(const struct vp_table *t, struct vp_table_step *f);

/* The launches of f that CUPTI timed too short to have read what they
 * point at (policy/replay.h, vp_replay_thin; a launch given its kernel's
 * median time is not judged) lose their pieces: the step then plans as
 * if they touched nothing, and they are served from host memory where
 * their pieces are not resident. op_thin (one per launch, or NULL) says
 * which; f->thin which pieces only such launches touch. Called once for
 * f. Returns 0, or -1 when out of memory (f unchanged). */
int vp_table_step_thin(const struct vp_table *t, struct vp_table_step *f, uint8_t *op_thin);

void vp_table_step_free(struct vp_table_step *f);

#endif
