/* record.h - the recording of the learned page table (VPAGE_TABLE): the
 * program's kernel launches on paged memory, the step found among them,
 * and the table written at exit (books/table.h).
 *
 * Contract
 *   Off unless VPAGE_TABLE names a file: vp_record_on() is then one load.
 *   The pager calls vp_record_alloc for each paged allocation it makes
 *   (numbered in the order of making: addresses differ between runs,
 *   orders do not) and vp_record_launch for each kernel launch it fences,
 *   with the pieces the launch is taken to touch (pager/launch.h), in the
 *   order they are issued. The latest VP_RECORD_OPS launches are kept.
 *   At exit vp_record_finish finds the step, the shortest period of the
 *   launches (kernel and pieces; failing that, kernels alone) that repeats
 *   three times over (vp_plan_period,
 *   policy/plan.h), ends at one of the last 256 launches (a loop is often
 *   followed by a few launches of its own) and, of those, holds over the
 *   most launches, and writes that last step as a table: every launch's
 *   kernel and pieces, the
 *   allocations and kernels they name, and the most device memory counted
 *   outside paged memory meanwhile ("other"). Each launch's time on the
 *   device comes from CUPTI where it runs (VPAGE_CUPTI; a launch CUPTI
 *   did not time takes the time of its twin a step before, else 0); "w"
 *   (writes) is not known. No step found: no file, and one line that says
 *   so.
 *
 *   The pieces a step's launches touch may differ from one step to the
 *   next (a caching allocator hands a tensor another block; a buffer is
 *   made anew each step, as a KV cache grown by a token): then the step is
 *   found by kernels alone, may start at another launch of the loop, and
 *   the table keeps the last step's pieces. Each launch keeps only the
 *   spans on allocations its twin a step before touched too: a span the
 *   twin lacks is a stale word of the kernel's parameters (what a struct's
 *   unused tail held, as PyTorch's TensorIterator and cat kernels carry:
 *   another address each step) or a buffer made anew, not the step's. Of the periods of the kernels,
 *   the step is the one whose launches are most often the launch a step
 *   before, counting only the allocations made before the three steps
 *   seen; more than half must be (else one kernel run on ever other
 *   pieces, a loop seen once, or one layer of many would be a step).
 *   Only the device of the first launch recorded is kept. Launches of
 *   more than VP_RECORD_SPANS allocations keep the first ones. Graph
 *   replays and launches whose parameters cannot be read are not
 *   launches here.

 *   Locks: one leaf mutex of its own; vp_record_launch and vp_record_alloc
 *   are called under the pager's mutex (the order of issue).
 */
#ifndef VPAGE_PAGER_RECORD_H
#define VPAGE_PAGER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define VP_RECORD_OPS (1u << 16)
#define VP_RECORD_SPANS 8

struct vp_record_span {
    uint32_t alloc;       /* its allocation, by order of making */
    uint32_t first, last; /* its pieces */
};

/* A launch's identity: FNV-1a over its kernel's name as a table keeps it
 * (books/table.h: at most VP_TABLE_NAME - 1 bytes, '_' for a space or a
 * byte that is not printable ASCII, "?" for none), then its spans; *kid:
 * over the name alone. The same in every run of a program. */
uint64_t vp_record_id(const char *kernel, const struct vp_record_span *s, size_t n, uint64_t *kid);

/* True when launches are recorded (VPAGE_TABLE names a file). */
int vp_record_on(void);

/* Paged allocation number order was made: bytes, cut in pieces of piece. */
void vp_record_alloc(uint32_t order, uint64_t bytes, uint64_t piece);

/* Starts timing kernels with CUPTI when launches are recorded and
 * VPAGE_CUPTI allows (driver/cupti.h); at the first paged allocation. */
void vp_record_start(void);

/* A kernel launch on device dev touching s[0..n), its identity id and
 * its kernel's kid (vp_record_id, computed once by the caller for this
 * and the replay); other: device bytes counted outside paged memory now.
 * Returns its number among the launches recorded (from 1: the id to push
 * to CUPTI around it, vp_cupti_push), or 0 when it is not recorded. */
uint64_t vp_record_launch(const char *kernel, uint64_t id, uint64_t kid, int dev, const struct vp_record_span *s,
                          size_t n, uint64_t other);

/* At exit: writes the table (see contract). */
void vp_record_finish(void);

/* The child after fork: the parent's launches are not its own. */
void vp_record_reset_child(void);

#endif
