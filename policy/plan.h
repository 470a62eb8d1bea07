/* plan.h - the planner of the learned page table: one step of the
 * program's loop, known in advance, turned into the moves that serve it.
 *
 * Terms
 *   step   one period of the program's loop (a denoising step, a decoded
 *          token): ops 0..nops-1 (kernel launches) in order, each with its
 *          time on the device and the pieces it touches. The loop repeats
 *          the step, so the next use of a piece after the last op is its
 *          first use in the step.
 *   piece  a unit of paged memory, id 0..npieces-1, of bytes[id] bytes;
 *          dirty when the step writes it (leaving then costs a copy back,
 *          where a clean piece is dropped).
 *   plan   the steady state of the loop under a budget of device bytes for
 *          pieces: which pieces come in before which op and leave after
 *          which op, what stays resident all step long (pinned), and the
 *          bytes moved each way a step.
 *
 * Contract
 *   Pure functions: no locks, no driver calls, no state but what the
 *   caller hands in; the caller owns every array. A table that makes no
 *   sense (an op touching more bytes than the budget, ids out of range) is
 *   answered with an error, never a crash: the pager then plans as it
 *   does without a table ("no hints").
 *
 *   vp_plan_period: the step in a stream of launch identities (a hash of
 *   each launch's kernel, grid and arguments named by allocation order):
 *   the shortest period p the last reps*p launches repeat exactly.
 *
 *   vp_plan_step: Belady's rule over the loop. A piece comes in when an op
 *   needs it and it is not resident; when room is needed, the resident
 *   piece (not needed by that op) whose next use is furthest leaves, a
 *   clean one before a dirty one at the same distance. With pieces of one
 *   size and no dirty ones this moves the fewest bytes there are (Belady,
 *   1966); tests/test_plan.c checks it against an exhaustive search. The
 *   steady state is found by playing the loop until a step starts as an
 *   earlier one did: the plan covers the steps between (ABC ABC over room
 *   for two pieces repeats every second step). Bytes are per step,
 *   averaged over the period.
 *
 *   vp_plan_simulate: how long the planned step takes. The ops run in
 *   order, each once the one before it ended and its pieces are in; the
 *   moves in go over the host-to-device bus one after the other, in the
 *   order the ops need them, each as early as the bus and the room allow
 *   (a piece leaves at the end of its op, a dirty one once copied back over
 *   the other direction of the bus). A piece brought in holds the bus for
 *   its bytes / h2d, plus bytes * remap (the pager's remaps). So each
 *   prefetch's lead is sized from the ops' times and the bandwidth: it
 *   reports, per move in, the op that runs when it starts. A plan with no
 *   steady state is timed over the steps it averages, played once from
 *   the state the steps before left (its first step the warm-up): an
 *   estimate. vp_plan_times says how the step ran (each op's and move's
 *   span, the room held), for a picture.
 */
#ifndef VPAGE_POLICY_PLAN_H
#define VPAGE_POLICY_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* ---- the step ---- */

/* The shortest period p (from <= p <= n / reps, from >= 1) such that the
 * last reps * p identities are the same p repeated; 0 when there is none.
 * (A caller that finds p is not its loop asks again from p + 1.) */
size_t vp_plan_period(const uint64_t *ids, size_t n, unsigned reps, size_t from);

struct vp_step_op {
    double dur_s;    /* its time on the device */
    uint32_t first;  /* its pieces: touch[first .. first + n) */
    uint32_t n;
};

struct vp_step {
    size_t nops, npieces;
    const struct vp_step_op *ops;
    const uint32_t *touch;  /* piece ids */
    const uint64_t *bytes;  /* per piece */
    const uint8_t *dirty;   /* per piece (NULL: none dirty) */
};

/* The bytes of the pieces op i of s touches. */
uint64_t vp_step_op_bytes(const struct vp_step *s, size_t i);

/* ---- the plan ---- */

struct vp_move {
    uint32_t op;    /* in: before this op; out: after it, its last use (ops of the plan's
                     * moves_steps steps in a row: op % nops is the step's op) */
    uint32_t piece;
    uint8_t out;
    uint8_t wrap;   /* out: the room it frees serves the next step's op */
};

#define VP_PLAN_MAX_STEPS 512   /* steps played to find the steady state */
#define VP_PLAN_AVERAGE_STEPS 64 /* steps averaged where none is found */

struct vp_plan {
    /* the caller's arrays: moves (room for 2 * the step's touches * the
     * period's steps; NULL: bytes only, no moves), and per piece
     * resident_at_start and pinned */
    struct vp_move *moves;
    size_t nmoves, cap;
    uint8_t *resident_at_start; /* resident when the step begins */
    uint8_t *pinned;            /* resident all step long */
    uint64_t period_in, period_out; /* bytes moved over the period (out: copied back) */
    uint64_t bytes_in, bytes_out;   /* the same a step (rounded down) */
    unsigned period_steps;      /* steps the steady state repeats after (1 mostly; a
                                 * loop of k + 1 pieces over room for k needs more;
                                 * 0: none within VP_PLAN_MAX_STEPS) */
    unsigned steps_to_settle;   /* steps played before the steady state */
    unsigned moves_steps;       /* the steps the moves cover: period_steps, or, with no
                                 * steady state, the VP_PLAN_AVERAGE_STEPS steps averaged
                                 * (their last state is not their first: they do not
                                 * repeat exactly) */
};

enum vp_plan_error {
    VP_PLAN_OK = 0,
    VP_PLAN_BAD_TABLE = -1, /* an id out of range, or no ops */
    VP_PLAN_TOO_BIG = -2,   /* an op touches more than the budget */
    VP_PLAN_NO_ROOM = -3,   /* the caller's moves array is too small for the period (its
                             * bytes and pinned pieces are still right) */
    VP_PLAN_UNSETTLED = -4, /* no steady state within VP_PLAN_MAX_STEPS: bytes are the
                             * average of VP_PLAN_AVERAGE_STEPS steps, and the moves those
                             * steps' (none when the caller's array is too small for them) */
};

/* Frees p's three arrays (moves, resident_at_start, pinned) where they
 * were allocated with malloc (vp_replay_plan_make's, a tool's). */
void vp_plan_free(struct vp_plan *p);

/* Plans the loop of step s under budget bytes. Returns VP_PLAN_OK or an
 * error (nothing in p is then meaningful). */
int vp_plan_step(const struct vp_step *s, uint64_t budget, struct vp_plan *p);

/* ---- its time ---- */

struct vp_bus {
    double h2d, d2h; /* bytes a second, each direction (they run at once) */
    double remap;    /* seconds each byte brought in holds the host-to-device bus after its copy: the
                      * pager's remaps of the pieces coming in and of those leaving for them, which its
                      * copies wait for (0: the bus alone) */
};

/* The time of one steady-state step of plan p (from vp_plan_step) of step
 * s, on bus b (averaged over the steps its moves cover: the period, or the
 * steps averaged when there is none, an estimate then). lead (NULL, or one per
 * move of p): for a move in, the op during which its copy starts, counted
 * in the plan's period (the period before counts from -period_steps *
 * nops); for a move out, its op. Returns the step's seconds, or a negative
 * value when the plan does not fit the budget. */
double vp_plan_simulate(const struct vp_step *s, uint64_t budget, const struct vp_plan *p,
                        const struct vp_bus *b, int32_t *lead);

/* A change of the room the simulated step holds: +bytes when a copy in
 * starts (its room is taken), -bytes when a piece's room is freed. */
struct vp_plan_event {
    double t;
    int64_t bytes;
};

/* What vp_plan_times fills. A plan with a period plays it twice from an
 * empty bus, the second play the steady state; one without plays its
 * moves' steps once, the first of them the warm-up. Times are in seconds
 * from the first play's start. The caller's arrays, each NULL or of the
 * size given: */
struct vp_plan_times {
    double *op_start, *op_end;     /* per op of the last play (vp_plan_ops of them) */
    double *move_start, *move_end; /* per move of the plan, in the last play: in, its copy over the
                                    * bus; out, from its op's end to its room freed (after its copy
                                    * back when dirty) */
    struct vp_plan_event *events;  /* 4 * nmoves + 2: every change of the room held over the
                                    * plays, in the order the simulation makes them */
    size_t nevents;
    uint64_t held_at_start;        /* the room held when the first play begins */
    double begin, end;             /* the span the answer averages: the second play, or the
                                    * one play after its first step */
};

/* The ops the plan's moves cover: moves_steps (at least 1) steps of s. */
size_t vp_plan_ops(const struct vp_step *s, const struct vp_plan *p);

/* Sorts tm->events by time, a free before a take at the same instant (the
 * simulation starts a copy the moment room frees): the order in which the
 * room held changed. */
void vp_plan_sort_events(struct vp_plan_times *tm);

/* vp_plan_simulate, and how its steady-state step ran into *out (for a
 * picture of it: tools/vpage-table draw). Same answer. */
double vp_plan_times(const struct vp_step *s, uint64_t budget, const struct vp_plan *p, const struct vp_bus *b,
                     int32_t *lead, struct vp_plan_times *out);

#endif
