/* replay.h - the learned page table replayed (VPAGE_TABLE): the step a
 * run before wrote (pager/record.h, books/table.h) read at start, the
 * program's launches followed along it with a cursor, and the stream
 * pager's pieces ranked by the step's known future (policy/replay.h)
 * instead of the online guesses, from the first step on.
 *
 * Contract
 *   Off unless VPAGE_TABLE names a file that exists: vp_replay_load, at
 *   the first streamed allocation, reads it once; a file that cannot be
 *   read or parsed is refused with one line that says why, and the run
 *   pages online. The table is of this program when every allocation it
 *   names is made here with the same size and piece (by order of making,
 *   vp_replay_alloc): the first that differs drops the table, with one
 *   line, and nothing is replayed from then on.
 *
 *   vp_replay_launch follows each kernel launch on streamed memory: the
 *   launch the cursor expects (the same kernel and pieces) moves it on; a
 *   launch found elsewhere in the step moves the cursor there; a launch of
 *   the expected kernel on other pieces (a caching allocator's other
 *   block) moves it on, and the pieces it touches that the step's launch
 *   does not are used otherwise than the table says: each such piece
 *   ranks online from the second such launch on it within a step's
 *   launches (a small tensor put in the tail of a weight's block in this
 *   run would be taken for the weight, used once a step), while one such
 *   launch alone (a stale word in the kernel's parameters, another
 *   address each step) leaves it to the table (policy/replay.h,
 *   vp_replay_off_again; replay_off_once counts them). Any other
 *   launch of a kernel the step runs (a buffer made anew each step, or
 *   the cursor out of step) moves the cursor to the nearest launch of
 *   that kernel from the cursor on that shares one of its pieces (a
 *   weight's), else to the nearest launch of that kernel; only a shared
 *   piece marks the others as used otherwise. A launch of a kernel the
 *   step never runs leaves the cursor where it is (it may stand for the
 *   launch there), and the next launch is not taken for the one expected
 *   by its kernel alone. Before the first launch found, pieces rank online
 *   (policy/stream.h): correctness never depends on the table, only which
 *   pieces are resident when. Until a launch is found by its identity
 *   (kernel and pieces), the cursor is a guess: no launch is taken for the
 *   one there by its kernel alone, and none marks pieces as used
 *   otherwise (the program's work before its loop is not the step's).
 *
 *   From that launch on, each step's count of launches followed is a lap;
 *   a lap that brought in more than twice what the replay plays for a step
 *   plus the budget gives the table up, with one line: the run pages
 *   online from then on (replay_gave_up).
 *
 *   With VPAGE_TABLE_LEAVE_THIN, the launches the table timed too short
 *   to have read what they point at (policy/replay.h, vp_replay_thin: an
 *   embedding's lookup) are taken out of the step's plan
 *   (books/tablestep.h): pieces only they touch are never wanted ahead,
 *   and at such a launch its pieces that are not resident are left on
 *   the host for it (vp_replay_left), where the few bytes it reads cross
 *   the bus. A launch taken for a thin one marks no piece off.
 *
 *   vp_replay_rank_piece gives the class and key of a piece of the step
 *   while the cursor is found, and of a pinned piece even while it is not
 *   (before the loop starts, pieces written then stay: the first step
 *   begins with its pins resident); vp_replay_budget chooses the pins for
 *   the device's budget (again when it changes by a piece or more) under
 *   a window: VPAGE_STREAM_WINDOW when set, else the rule's
 *   (vp_replay_window), or with VPAGE_TABLE_WINDOW=timed the one found
 *   from the step's times (pager/winfind.h, started at the table's first
 *   allocation for its device's cap) once it is found, repinning then.
 *
 *   Locks: none of its own; every call but vp_replay_load is made under
 *   the stream pager's mutex (pager/stream/internal.h).
 */
#ifndef VPAGE_PAGER_REPLAY_H
#define VPAGE_PAGER_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/vp.h"
#include "record.h"

/* Reads VPAGE_TABLE once, if it names a file (thread-safe). */
void vp_replay_load(void);

/* A table is loaded and not dropped. */
int vp_replay_on(void);

/* Streamed allocation number order was made on dev: span bytes, cut in
 * pieces of piece. */
void vp_replay_alloc(uint32_t order, uint64_t span, uint64_t piece, int dev);

/* A kernel launch on dev touching s[0..n), of identity id and kernel kid
 * (vp_record_id). Returns 1 when the cursor is found and the launch
 * touches a piece that streams (the wanted set moves on: the pager
 * plans). */
int vp_replay_launch(uint64_t id, uint64_t kid, int dev, const struct vp_record_span *s, size_t n);

/* The pieces the last vp_replay_launch leaves on the host for its launch
 * where they are not resident, at most VP_REPLAY_LEFT: *out, and how
 * many. With VPAGE_TABLE_LEAVE_STALE, those it took for touched by a
 * stale word of its parameters (the first such launch on them within a
 * step: vp_replay_off_again); with VPAGE_TABLE_LEAVE_THIN, every piece of
 * a launch the table has as thin (thin set). */
#define VP_REPLAY_LEFT 64
struct vp_replay_piece {
    uint32_t order, piece;
    uint8_t thin;
};
size_t vp_replay_left(const struct vp_replay_piece **out);

/* The cursor is found on dev. */
int vp_replay_found(int dev);

/* Bytes of the pieces the replayed step touches on dev (0: no table
 * replayed there). */
uint64_t vp_replay_step_bytes(int dev);

/* Chooses the pins for dev's budget of device bytes for pieces. */
void vp_replay_budget(int dev, uint64_t budget);

/* The class and key (policy/stream.h) at tick now of piece k of the
 * allocation made order-th, on dev, and the tick of its next use (*when:
 * the order wanted pieces come in). Returns 1, or 0 when the replay does
 * not rank it (no table, not a piece the step touches, or not pinned
 * before the first launch found). */
int vp_replay_rank_piece(uint32_t order, uint32_t k, int dev, uint64_t now, uint8_t *cls, uint64_t *key,
                         uint64_t *when);

/* The replay's counters for the stats of dev (pager/shared.h's report). */
void vp_replay_report(int json, vp_emit_fn emit, void *ctx, int dev);

/* Bytes of a piece that came in on dev (the stream pager's moves): a step
 * that brings in more than twice what the replay's policy plays for it,
 * plus the budget, ends the replay (one line; paged online from then on). */
void vp_replay_came_in(int dev, uint64_t bytes);

/* The child after fork: its allocations are not the parent's program's;
 * nothing is replayed (the table's memory is left to the parent). */
void vp_replay_reset_child(void);

#endif
