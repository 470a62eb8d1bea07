/* replay.h - the policy of the learned page table's replay: with one step
 * of the program known in advance (policy/plan.h), which pieces stay
 * resident all step long and how every other piece ranks at a point of
 * the step, for the stream pager's wanted set (policy/stream.h).
 *
 * Contract
 *   Pure functions over the caller's arrays: no locks, no driver calls, no
 *   state. The pager (pager/replay.c) follows the program's launches along
 *   the step with a cursor (the op the next launch is taken to be) and
 *   ranks the pieces the step touches with these instead of the online
 *   guesses of policy/stream.h:
 *     pinned pieces (VP_SC_PIN, by pin rank) stay all step;
 *     the others (VP_SC_NEXT) rank by their next use, counted in ops from
 *     the cursor around the loop, so the wanted set is the pinned pieces
 *     and, in what is left of the budget (the window), the next ones the
 *     step needs: each comes in as soon as there is room and leaves after
 *     its last use of a visit (furthest next use leaves first).
 *   What the pinned pieces leave of the budget, the window, is what
 *   streams. The pins: everything when the step's pieces fit the budget;
 *   else the first of an order that fit the budget less the window: pieces
 *   with the most visits a step first (each visit of a piece that streams
 *   is one move in), and within equal visits an order any first part of
 *   which is spread evenly over the step, so the bytes that stream are
 *   spread over the step's compute and a budget that moves changes only
 *   the last pins.
 */
#ifndef VPAGE_POLICY_REPLAY_H
#define VPAGE_POLICY_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"

#define VP_REPLAY_NEVER UINT32_MAX

/* Which ops use each piece: uses of piece x are ops[start[x] .. start[x+1]),
 * ascending. start: s->npieces + 1 entries; ops: one per touch of the
 * step (the sum of its ops' n). */
void vp_replay_index(const struct vp_step *s, uint32_t *start, uint32_t *ops);

/* Ops from op at to the next use at or after it of a piece used by
 * u[0..n) (ascending, each < nops), around the loop: 0 when op at uses
 * it; VP_REPLAY_NEVER when n is 0. */
uint32_t vp_replay_next(const uint32_t *u, uint32_t n, uint32_t nops, uint32_t at);

/* Visits a step of a piece used by u[0..n): a use more than gap ops after
 * the use before it, around the loop, starts a visit (at least 1 when
 * n > 0). */
uint32_t vp_replay_visits(const uint32_t *u, uint32_t n, uint32_t nops, uint32_t gap);

/* Whether a piece of the step that a launch touched where the table does
 * not say ranks online from now on (the pager's replay, pager/replay.h).
 * now: that launch's number among the run's; seen: the number of the last
 * such launch on the piece (0: none). Yes when it is the second such
 * launch within one step's nops launches (a tensor this run put where the
 * table has another, used every step or more often); one launch alone
 * (a stale word in a kernel's parameters, as a struct's unused tail
 * holds: another piece each step) leaves the piece to the table. */
int vp_replay_off_again(uint64_t seen, uint64_t now, uint64_t nops);

/* The fastest a device reads its own memory (B/s: above any HBM of
 * today's), and how many times more than a launch could have read in its
 * time its pieces must be for it to be thin (vp_replay_thin). */
#define VP_REPLAY_THIN_READ 8e12
#define VP_REPLAY_THIN_RATIO 4

/* Whether a launch of dur_s seconds on the device (0: not timed) that
 * touches bytes of pieces of piece bytes is thin: it cannot have read
 * what its parameters point at, only a part (an embedding's rows a token
 * looks up): its pieces are at least one piece's bytes and more than
 * VP_REPLAY_THIN_RATIO times what VP_REPLAY_THIN_READ reads in dur_s. Such
 * a launch is better served from host memory, where the few bytes it does
 * read cross the bus, than by bringing in every piece first: whatever it
 * reads over the bus is at most 1 / VP_REPLAY_THIN_RATIO of those pieces'
 * bytes. A launch not timed is never thin. */
int vp_replay_thin(double dur_s, uint64_t bytes, uint64_t piece);

/* The window, the bytes of budget left to what streams: want
 * (VPAGE_STREAM_WINDOW) when not 0; else twice the most bytes one op of
 * the step touches (the pieces of the op that runs and of the next one
 * coming in meanwhile); at least 4 pieces of piece bytes, at most budget. */
uint64_t vp_replay_window(const struct vp_step *s, uint64_t budget, uint64_t piece, uint64_t want);

/* Orders the step's pieces for pinning (contract): by[0..n) are the
 * pieces the step touches, the first to pin first: most visits a step
 * first (gap: as for vp_replay_visits); within equal visits any first k
 * are spread evenly over the step (their order of first use, taken in
 * bit-reversed order: 0, 4, 2, 6, 1, 5, 3, 7 of eight). So the pins of a
 * smaller budget are some of those of a larger one: a budget that moves
 * changes the pins at the edge only. place (NULL, or one per piece of
 * the step): each piece's place in that order, from 1; 0 for a piece the
 * step does not touch. Returns n, or 0 when out of memory. */
size_t vp_replay_pin_order(const struct vp_step *s, const uint32_t *start, const uint32_t *ops, uint32_t gap,
                           uint32_t *by, uint32_t *place);

/* How many of by[0..n) are pinned: all when the step's pieces fit budget,
 * else the first ones that fit budget less window. *bytes: their bytes. */
size_t vp_replay_pin_count(const struct vp_step *s, const uint32_t *by, size_t n, uint64_t budget, uint64_t window,
                           uint64_t *bytes);

/* The class and key (policy/stream.h) at tick now of a piece of the step:
 * pinned (its place in the pin order, from 1) or not (0), next use dist
 * ops from the cursor. *when: the tick of that use (VP_KEY_GUESS and
 * more when it has none), the order pieces come in: pinned or not, the
 * soonest needed first. */
void vp_replay_rank(uint32_t pin, uint32_t dist, uint64_t now, uint8_t *cls, uint64_t *key, uint64_t *when);

/* Bytes the replay brings in a step of s's loop under budget, moves taken
 * as instant: the pins (vp_replay_pin_order, vp_replay_pin_count) under
 * window, each op's pieces asked for (VP_SC_NOW), the others ranked by
 * vp_replay_rank with the cursor after the op, and the wanted set
 * vp_stream_desire's. Three steps are played, the last counted. *pinned:
 * the pins' bytes. UINT64_MAX when out of memory. For the offline tool
 * (tools/vpage-table.c): what the pager would move, next to Belady's
 * plan (policy/plan.h). */
uint64_t vp_replay_play(const struct vp_step *s, uint64_t budget, uint64_t window, uint32_t gap, uint64_t *pinned);

/* Steps vp_replay_plan plays before it records, and records. */
#define VP_REPLAY_WARMUP 2
#define VP_REPLAY_PLAN_STEPS 4

/* What vp_replay_play does, as a plan (policy/plan.h) that vp_plan_times
 * can time: after VP_REPLAY_WARMUP steps, the moves of
 * VP_REPLAY_PLAN_STEPS steps (r->moves_steps; r->period_steps 0: played
 * once, the first of them the warm-up). A piece that comes in moves in
 * before the op that first uses it (the simulation sizes its lead, as the
 * pager brings a piece in as soon as there is room), and out after its
 * last use before it left; one brought in and sent out again before any
 * use (pushed out by what came to need the room) is no move of the plan:
 * its bytes a step go to *dropped. r: the caller's arrays as for
 * vp_plan_step (moves: room for 2 * the step's touches *
 * VP_REPLAY_PLAN_STEPS; NULL: bytes only); resident_at_start excludes
 * pieces brought in ahead and not used yet. Returns VP_PLAN_OK,
 * VP_PLAN_NO_ROOM (moves too small) or VP_PLAN_BAD_TABLE (no ops, or out
 * of memory). */
int vp_replay_plan(const struct vp_step *s, uint64_t budget, uint64_t window, uint32_t gap, struct vp_plan *r,
                   uint64_t *dropped);

/* p with arrays of the sizes vp_replay_plan needs for s, allocated (free
 * them with vp_plan_free). Returns 0, or -1 when out of memory. */
int vp_replay_plan_make(const struct vp_step *s, struct vp_plan *p);

/* Windows vp_replay_window_timed tries. */
#define VP_REPLAY_WINDOWS 6

/* The window sized from the step's times (each prefetch's lead then
 * comes from the kernels' durations and the bandwidth, not a fixed rule):
 * of VP_REPLAY_WINDOWS windows evenly from the most bytes one op touches
 * (at least 4 pieces) to twice vp_replay_window's rule (at most the
 * budget), the one whose replay (vp_replay_plan) simulates fastest on bus
 * b (vp_plan_simulate), the smaller one unless a larger is faster by more
 * than 1% (what a larger window costs is pins: bytes moved); the rule's
 * own window where it is faster than that by more than 1%. *step_s: that
 * time. A step without times is timed by its copies alone (the window
 * that moves the fewest bytes without holding copies up). No choice to
 * make (the rule's window is the budget, or within the largest op's): the
 * rule's window, *step_s negative. 0 when out of memory. */
uint64_t vp_replay_window_timed(const struct vp_step *s, uint64_t budget, uint64_t piece, uint32_t gap,
                                const struct vp_bus *b, double *step_s);

#endif
