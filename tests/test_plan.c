/* test_plan.c - the planner of the learned page table (policy/plan.h) on
 * its own: the step found in a stream of launches, Belady's plan of a loop
 * checked against an exhaustive search on small tables, the dirty and
 * clean pieces, and the time a plan takes against cases worked out here. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/plan.h"
#include "../policy/replay.h"
#include "../policy/stream.h"

/* ---- the step in a stream of launches ---- */

Test(plan, the_step_is_the_shortest_period_the_stream_ends_with)
{
    /* loading (1 2 3), then a step of 5 launches four times over */
    uint64_t ids[3 + 20];
    uint64_t step[5] = {7, 8, 7, 9, 10};
    ids[0] = 1, ids[1] = 2, ids[2] = 3;
    for (int i = 0; i < 20; i++) ids[3 + i] = step[i % 5];
    cr_assert_eq(vp_plan_period(ids, 23, 3, 1), 5);
    cr_assert_eq(vp_plan_period(ids, 23, 4, 1), 5);
    cr_assert_eq(vp_plan_period(ids, 23, 5, 1), 0, "only four steps were seen");
    uint64_t one[6] = {4, 4, 4, 4, 4, 4};
    cr_assert_eq(vp_plan_period(one, 6, 3, 1), 1);
    uint64_t none[6] = {1, 2, 3, 4, 5, 6};
    cr_assert_eq(vp_plan_period(none, 6, 2, 1), 0);
}

Test(plan, asked_from_a_longer_period_it_finds_the_next_one)
{
    /* one kernel all along: every period holds; from 3 on, the next is 3 */
    uint64_t one[12] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
    cr_assert_eq(vp_plan_period(one, 12, 3, 3), 3);
    cr_assert_eq(vp_plan_period(one, 12, 3, 5), 0, "5 * 3 launches were not seen");
    uint64_t ids[20];
    uint64_t step[5] = {7, 8, 7, 9, 10};
    for (int i = 0; i < 20; i++) ids[i] = step[i % 5];
    cr_assert_eq(vp_plan_period(ids, 20, 3, 2), 5);
    cr_assert_eq(vp_plan_period(ids, 20, 3, 6), 0, "10 is a period, but not seen three times");
    cr_assert_eq(vp_plan_period(ids, 20, 2, 6), 10);
}

Test(plan, a_step_with_a_repeated_layer_is_the_whole_step_not_the_layer)
{
    /* a step: three identical layers (a b) and a head (h) */
    uint64_t step[7] = {1, 2, 1, 2, 1, 2, 9};
    uint64_t ids[21];
    for (int i = 0; i < 21; i++) ids[i] = step[i % 7];
    cr_assert_eq(vp_plan_period(ids, 21, 3, 1), 7);
}

/* ---- tables ---- */

#define MAXP 8
#define MAXO 16

struct table {
    struct vp_step_op ops[MAXO];
    uint32_t touch[MAXO * MAXP];
    uint64_t bytes[MAXP];
    uint8_t dirty[MAXP];
    struct vp_step s;
};

/* ops[i] = the pieces of sets[i] (a string of letters 'a'...) */
static void table(struct table *t, const char *const *sets, size_t nops, size_t npieces, uint64_t piece_bytes)
{
    memset(t, 0, sizeof *t);
    uint32_t k = 0;
    for (size_t i = 0; i < nops; i++) {
        t->ops[i] = (struct vp_step_op){1.0, k, (uint32_t)strlen(sets[i])};
        for (const char *c = sets[i]; *c; c++) t->touch[k++] = (uint32_t)(*c - 'a');
    }
    for (size_t x = 0; x < npieces; x++) t->bytes[x] = piece_bytes;
    t->s = (struct vp_step){nops, npieces, t->ops, t->touch, t->bytes, t->dirty};
}

struct planned {
    struct vp_move moves[2 * VP_PLAN_MAX_STEPS * MAXO * MAXP];
    uint8_t start[MAXP], pinned[MAXP];
    struct vp_plan p;
};

static int plan(struct planned *pl, const struct table *t, uint64_t budget)
{
    memset(pl, 0, sizeof *pl);
    pl->p = (struct vp_plan){.moves = pl->moves, .cap = sizeof pl->moves / sizeof *pl->moves,
                             .resident_at_start = pl->start, .pinned = pl->pinned};
    return vp_plan_step(&t->s, budget, &pl->p);
}

Test(plan, a_loop_that_fits_moves_nothing_and_pins_everything)
{
    static const char *const sets[] = {"ab", "c", "a"};
    struct table t;
    struct planned pl;
    table(&t, sets, 3, 3, 10);
    cr_assert_eq(plan(&pl, &t, 30), VP_PLAN_OK);
    cr_assert_eq(pl.p.bytes_in, 0);
    cr_assert_eq(pl.p.nmoves, 0);
    for (int x = 0; x < 3; x++) cr_assert(pl.pinned[x]);
}

Test(plan, a_table_that_makes_no_sense_is_refused)
{
    static const char *const sets[] = {"ab", "c"};
    struct table t;
    struct planned pl;
    table(&t, sets, 2, 3, 10);
    cr_assert_eq(plan(&pl, &t, 15), VP_PLAN_TOO_BIG, "op 0 needs 20 bytes");
    t.touch[0] = 7;
    cr_assert_eq(plan(&pl, &t, 100), VP_PLAN_BAD_TABLE, "a piece id out of range");
    table(&t, sets, 2, 3, 10);
    t.s.nops = 0;
    cr_assert_eq(plan(&pl, &t, 100), VP_PLAN_BAD_TABLE);
    table(&t, sets, 2, 3, 10);
    memset(&pl, 0, sizeof pl);
    pl.p = (struct vp_plan){.moves = pl.moves, .cap = 1, .resident_at_start = pl.start, .pinned = pl.pinned};
    cr_assert_eq(vp_plan_step(&t.s, 20, &pl.p), VP_PLAN_NO_ROOM);
}

Test(plan, a_loop_of_three_over_room_for_two_repeats_every_second_step)
{
    static const char *const sets[] = {"a", "b", "c"};
    struct table t;
    struct planned pl;
    table(&t, sets, 3, 3, 10);
    cr_assert_eq(plan(&pl, &t, 20), VP_PLAN_OK);
    cr_assert_eq(pl.p.period_steps, 2);
    cr_assert_eq(pl.p.bytes_in, 15, "one miss in two uses: 1.5 pieces a step, not 3 (LRU's)");
}

/* ---- Belady against an exhaustive search ---- */

/* The least bytes a step can bring in, in the long run, with pieces of one
 * size (unit bytes) and room for cap of them: the minimum mean cycle
 * (Karp) of the graph whose nodes are the resident sets at a step's start
 * and whose edges are one step's cheapest way from one to another (a
 * search over every resident set after every op). */
static double optimum(const struct table *t, int cap)
{
    int np = (int)t->s.npieces, ns = 1 << np;
    static double cost[1 << MAXP][1 << MAXP], d[(1 << MAXP) + 1][1 << MAXP];
    for (int a = 0; a < ns; a++) {
        double cur[1 << MAXP], nxt[1 << MAXP];
        for (int m = 0; m < ns; m++) cur[m] = INFINITY;
        if (__builtin_popcount(a) <= cap) cur[a] = 0;
        for (size_t i = 0; i < t->s.nops; i++) {
            int need = 0;
            for (uint32_t j = 0; j < t->ops[i].n; j++) need |= 1 << t->touch[t->ops[i].first + j];
            for (int m = 0; m < ns; m++) nxt[m] = INFINITY;
            for (int m = 0; m < ns; m++) {
                if (cur[m] == INFINITY) continue;
                int all = m | need;
                double c = cur[m] + __builtin_popcount(need & ~m);
                for (int u = all;; u = (u - 1) & all) { /* every subset of what could be resident */
                    if ((u & need) == need && __builtin_popcount(u) <= cap && c < nxt[u]) nxt[u] = c;
                    if (!u) break;
                }
            }
            memcpy(cur, nxt, sizeof cur);
        }
        for (int b = 0; b < ns; b++) cost[a][b] = cur[b];
    }
    for (int v = 0; v < ns; v++) d[0][v] = 0;
    for (int k = 1; k <= ns; k++)
        for (int v = 0; v < ns; v++) {
            d[k][v] = INFINITY;
            for (int a = 0; a < ns; a++)
                if (d[k - 1][a] + cost[a][v] < d[k][v]) d[k][v] = d[k - 1][a] + cost[a][v];
        }
    double best = INFINITY;
    for (int v = 0; v < ns; v++) {
        if (d[ns][v] == INFINITY) continue;
        double worst = -INFINITY;
        for (int k = 0; k < ns; k++)
            if (d[k][v] != INFINITY && (d[ns][v] - d[k][v]) / (ns - k) > worst) worst = (d[ns][v] - d[k][v]) / (ns - k);
        if (worst < best) best = worst;
    }
    return best;
}

Test(plan, belady_moves_the_fewest_bytes_there_are)
{
    unsigned seed = 12345, settled = 0, tried = 0;
    for (int round = 0; round < 300; round++) {
        int np = 3 + round % 4, nops = 3 + (round / 4) % 6, cap = 1 + round % (np - 1);
        char buf[MAXO][3];
        const char *sets[MAXO];
        for (int i = 0; i < nops; i++) {
            seed = seed * 1103515245u + 12345u;
            int n = cap >= 2 && (seed >> 16) % 3 == 0 ? 2 : 1;
            buf[i][0] = (char)('a' + (seed >> 8) % (unsigned)np);
            buf[i][1] = (char)('a' + (seed >> 20) % (unsigned)np);
            if (n == 1 || buf[i][1] == buf[i][0]) buf[i][1] = 0;
            buf[i][2] = 0;
            sets[i] = buf[i];
        }
        struct table t;
        static struct planned pl;
        table(&t, sets, (size_t)nops, (size_t)np, 1);
        int rc = plan(&pl, &t, (uint64_t)cap);
        tried++;
        if (rc == VP_PLAN_UNSETTLED) continue;
        cr_assert_eq(rc, VP_PLAN_OK, "round %d", round);
        settled++;
        double best = optimum(&t, cap), exact = best * pl.p.period_steps;
        cr_assert(fabs((double)pl.p.period_in - exact) < 1e-6,
                  "round %d: %d pieces, room for %d, %d ops: Belady brings in %llu over %u steps, the least "
                  "possible is %g a step", round, np, cap, nops, (unsigned long long)pl.p.period_in,
                  pl.p.period_steps, best);
    }
    cr_assert_geq(settled * 10, tried * 9, "most tables settle: %u of %u", settled, tried);
}

/* ---- dirty pieces ---- */

Test(plan, a_clean_piece_leaves_before_a_dirty_one_used_as_soon)
{
    /* op 0 uses a and b, op 1 uses c: one of a, b must leave for c, and
     * both are needed next at op 0 */
    static const char *const sets[] = {"ab", "c"};
    struct table t;
    struct planned pl;
    table(&t, sets, 2, 3, 10);
    t.dirty[1] = 1; /* b is written by the step */
    cr_assert_eq(plan(&pl, &t, 20), VP_PLAN_OK);
    cr_assert_eq(pl.p.bytes_out, 0, "a (clean) left, b (dirty) stayed");
    cr_assert_eq(pl.p.bytes_in, 20, "c, then a again");
    t.dirty[1] = 0;
    t.dirty[0] = 1;
    cr_assert_eq(plan(&pl, &t, 20), VP_PLAN_OK);
    cr_assert_eq(pl.p.bytes_out, 0, "now b leaves");
}

/* ---- the time of a plan ---- */

static double sim(const struct table *t, uint64_t budget, double h2d, int32_t *lead)
{
    static struct planned pl;
    cr_assert_eq(plan(&pl, t, budget), VP_PLAN_OK);
    struct vp_bus bus = {h2d, h2d, 0};
    return vp_plan_simulate(&t->s, budget, &pl.p, &bus, lead);
}

Test(plan, a_loop_that_fits_takes_its_compute)
{
    static const char *const sets[] = {"a", "b", "c"};
    struct table t;
    table(&t, sets, 3, 3, 1u << 30);
    cr_assert_float_eq(sim(&t, 3ull << 30, 1e9, NULL), 3.0, 1e-9);
}

Test(plan, room_for_one_piece_serialises_the_copies_and_the_compute)
{
    /* a then b, 1 s each, 1 GB pieces over 1 GB/s with room for one: each
     * piece comes in only once the other's op ended: 1 s copy + 1 s op, twice */
    static const char *const sets[] = {"a", "b"};
    struct table t;
    table(&t, sets, 2, 2, 1000000000);
    cr_assert_float_eq(sim(&t, 1000000000, 1e9, NULL), 4.0, 1e-9);
}

Test(plan, the_pagers_remaps_hold_the_bus_after_each_copy)
{
    /* the loop above, the pager remapping each piece for 0.5 s a GB after
     * its copy (tools/vpage-table --remap): each op waits 1.5 s for its
     * piece, then runs 1 s */
    static const char *const sets[] = {"a", "b"};
    struct table t;
    table(&t, sets, 2, 2, 1000000000);
    static struct planned pl;
    cr_assert_eq(plan(&pl, &t, 1000000000), VP_PLAN_OK);
    struct vp_bus bus = {1e9, 1e9, 0.5e-9};
    cr_assert_float_eq(vp_plan_simulate(&t.s, 1000000000, &pl.p, &bus, NULL), 5.0, 1e-9);
    bus.remap = 0;
    cr_assert_float_eq(vp_plan_simulate(&t.s, 1000000000, &pl.p, &bus, NULL), 4.0, 1e-9);
}

Test(plan, a_prefetch_starts_ops_ahead_and_hides_behind_the_compute)
{
    /* a is used by op 0 only, b by op 3, c by ops 1-2 and 4-5: with room for
     * two pieces, a and b take turns in one slot and c stays. Each turn's copy
     * (0.5 s) starts as soon as its slot frees, ops before its use, and hides
     * behind the 1 s ops: the step is its compute */
    static const char *const sets[] = {"a", "c", "c", "b", "c", "c"};
    struct table t;
    table(&t, sets, 6, 3, 500000000);
    static struct planned pl;
    cr_assert_eq(plan(&pl, &t, 1000000000), VP_PLAN_OK);
    cr_assert(pl.p.pinned[2], "c stays");
    cr_assert_eq(pl.p.bytes_in, 1000000000, "a and b, once each a step");
    int32_t lead[64];
    struct vp_bus bus = {1e9, 1e9, 0};
    double step = vp_plan_simulate(&t.s, 1000000000, &pl.p, &bus, lead);
    cr_assert_float_eq(step, 6.0, 1e-9, "the copies hide: %g s", step);
    for (size_t k = 0; k < pl.p.nmoves; k++) {
        if (pl.p.moves[k].out) continue;
        /* b (op 3) starts during op 1, right after a's op 0 ended; a (op 0)
         * during op 4 of the step before, after b's op 3 */
        int32_t want = pl.p.moves[k].piece == 1 ? 1 : -2;
        cr_assert_eq(lead[k], want, "piece %u needed at op %u starts at op %d", pl.p.moves[k].piece,
                     pl.p.moves[k].op, lead[k]);
    }
}

Test(plan, a_slow_bus_sets_the_pace)
{
    /* the same loop over a bus four times slower: each copy takes 2 s and
     * one lands every 3 ops; the two copies of a step take 4 s of the bus,
     * the compute 6 s: still the compute. At 8x slower (4 s a copy) the bus
     * needs 8 s a step and sets the pace */
    static const char *const sets[] = {"a", "c", "c", "b", "c", "c"};
    struct table t;
    table(&t, sets, 6, 3, 500000000);
    cr_assert_float_eq(sim(&t, 1000000000, 0.25e9, NULL), 6.0, 1e-9);
    double slow = sim(&t, 1000000000, 0.125e9, NULL);
    cr_assert(slow >= 8.0 - 1e-9, "%g s", slow);
}

/* The most room the simulated step held, from the events of
 * vp_plan_times in the order they happened. */
static int64_t most_held(struct vp_plan_times *tm)
{
    vp_plan_sort_events(tm);
    int64_t held = (int64_t)tm->held_at_start, most = held;
    for (size_t e = 0; e < tm->nevents; e++) {
        held += tm->events[e].bytes;
        if (held > most) most = held;
    }
    return most;
}

Test(plan, the_times_of_a_step_show_its_ops_in_order_each_copy_before_its_use_and_the_room_within_budget)
{
    /* the prefetch loop above, b written by the step (it is copied back
     * when it leaves, over the other direction of the bus) */
    static const char *const sets[] = {"a", "c", "c", "b", "c", "c"};
    struct table t;
    table(&t, sets, 6, 3, 500000000);
    t.dirty[1] = 1;
    static struct planned pl;
    cr_assert_eq(plan(&pl, &t, 1000000000), VP_PLAN_OK);
    double op_start[6], op_end[6], mv_start[64], mv_end[64];
    struct vp_plan_event ev[4 * 64 + 2];
    cr_assert_leq(pl.p.nmoves, 64);
    struct vp_plan_times tm = {op_start, op_end, mv_start, mv_end, ev, 0, 0, 0, 0};
    struct vp_bus bus = {1e9, 1e9, 0};
    double step = vp_plan_times(&t.s, 1000000000, &pl.p, &bus, NULL, &tm);
    cr_assert_float_eq(step, vp_plan_simulate(&t.s, 1000000000, &pl.p, &bus, NULL), 1e-12, "the same answer");
    cr_assert_float_eq(tm.end - tm.begin, step * pl.p.period_steps, 1e-9);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_float_eq(op_end[i] - op_start[i], 1.0, 1e-9, "op %zu runs its time", i);
        cr_assert_geq(op_start[i], i ? op_end[i - 1] : tm.begin - 1e-9, "op %zu starts after the one before", i);
    }
    size_t ins = 0, outs = 0;
    for (size_t k = 0; k < pl.p.nmoves; k++) {
        const struct vp_move *m = &pl.p.moves[k];
        cr_assert_leq(mv_start[k], mv_end[k] + 1e-12, "move %zu", k);
        if (m->out) {
            outs++;
            double copy = t.dirty[m->piece] ? 0.5 : 0.0; /* back over the bus, or freed at once */
            cr_assert_float_eq(mv_start[k], op_end[m->op], 1e-9, "piece %u leaves after its op", m->piece);
            cr_assert_geq(mv_end[k] - mv_start[k], copy - 1e-9, "piece %u's room frees after its copy back",
                          m->piece);
        } else {
            ins++;
            cr_assert_float_eq(mv_end[k] - mv_start[k], 0.5, 1e-9, "0.5 GB at 1 GB/s");
            cr_assert_leq(mv_end[k], op_start[m->op] + 1e-9, "piece %u is in before op %u starts", m->piece,
                          m->op);
        }
    }
    cr_assert(ins == 2 && outs == 2, "a and b come and go: %zu in, %zu out", ins, outs);
    cr_assert_leq(tm.nevents, 4 * pl.p.nmoves + 2);
    cr_assert_leq(most_held(&tm), 1000000000, "the room held stays within the budget");
    cr_assert_geq(most_held(&tm), 1000000000, "and fills it: c and one of a, b");
}

/* A random loop of RL_OPS ops over RL_PIECES pieces of several sizes (as
 * a real table's: no state repeats within VP_PLAN_MAX_STEPS steps for
 * most): the weights in turn, each with the activation (piece 0).
 * Returns the bytes the step touches. */
enum { RL_PIECES = 40, RL_OPS = 120 };
struct rloop {
    struct vp_step_op ops[RL_OPS];
    uint32_t touch[2 * RL_OPS];
    uint64_t bytes[RL_PIECES];
    struct vp_step s;
};

static uint64_t rotating_loop(struct rloop *l, int round, unsigned *seed)
{
    uint32_t k = 0;
    uint64_t total = 0;
    for (int x = 0; x < RL_PIECES; x++) total += l->bytes[x] = 1000 + 37 * (uint64_t)((x * 7 + round) % RL_PIECES);
    for (int i = 0; i < RL_OPS; i++) {
        *seed = *seed * 1103515245u + 12345u;
        l->ops[i] = (struct vp_step_op){0.001 * (1 + (*seed >> 28)), k, 2};
        l->touch[k++] = 0;
        l->touch[k++] = 1 + (uint32_t)(i % (RL_PIECES - 1));
    }
    l->s = (struct vp_step){RL_OPS, RL_PIECES, l->ops, l->touch, l->bytes, NULL};
    return total;
}

Test(plan, steps_with_no_steady_state_are_timed_from_the_steps_played)
{
    /* those with no steady state are timed once over the steps averaged,
     * which start as the last step played ended; their moves fit the
     * budget and bring each piece in before its op */
    static struct rloop l;
    static struct vp_move moves[2 * 2 * RL_OPS * VP_PLAN_AVERAGE_STEPS + 1];
    static uint8_t start[RL_PIECES], pinned[RL_PIECES];
    static double op_start[VP_PLAN_AVERAGE_STEPS * RL_OPS], op_end[VP_PLAN_AVERAGE_STEPS * RL_OPS];
    static double mv_start[sizeof moves / sizeof *moves], mv_end[sizeof moves / sizeof *moves];
    static struct vp_plan_event ev[4 * (sizeof moves / sizeof *moves) + 2];
    unsigned seed = 777, unsettled = 0;
    for (int round = 0; round < 8; round++) {
        uint64_t budget = rotating_loop(&l, round, &seed) / 3;
        struct vp_step st = l.s;
        struct vp_plan p = {.moves = moves, .cap = sizeof moves / sizeof *moves, .resident_at_start = start,
                            .pinned = pinned};
        int rc = vp_plan_step(&st, budget, &p);
        if (rc != VP_PLAN_UNSETTLED) continue;
        unsettled++;
        cr_assert_eq(p.moves_steps, VP_PLAN_AVERAGE_STEPS, "round %d", round);
        cr_assert_gt(p.nmoves, 0, "round %d: the steps played have their moves", round);
        struct vp_plan_times tm = {op_start, op_end, mv_start, mv_end, ev, 0, 0, 0, 0};
        struct vp_bus bus = {1e6, 1e6, 0};
        double step = vp_plan_times(&st, budget, &p, &bus, NULL, &tm);
        cr_assert_gt(step, 0, "round %d: timed", round);
        cr_assert_float_eq(step, vp_plan_simulate(&st, budget, &p, &bus, NULL), 1e-12);
        for (size_t m = 0; m < p.nmoves; m++)
            if (!p.moves[m].out)
                cr_assert_leq(mv_end[m], op_start[p.moves[m].op] + 1e-9, "round %d: piece %u in before op %u",
                              round, p.moves[m].piece, p.moves[m].op);
        cr_assert_leq(most_held(&tm), (int64_t)budget, "round %d: the room held stays within the budget", round);
    }
    cr_assert_gt(unsettled, 0, "some of these tables have no steady state");
}

Test(plan, the_replay_s_play_timed_as_a_plan_fits_its_budget_each_copy_before_its_use)
{
    /* vpage's replay (policy/replay.h) of the random loops above, at room
     * for a third and a half of them: its moves, timed, keep the room
     * held within the budget and bring each piece in before its op, and
     * its step takes at least the compute and its copies in */
    static struct rloop l;
    enum { RS = VP_REPLAY_PLAN_STEPS };
    static struct vp_move moves[2 * 2 * RL_OPS * RS + 1];
    static uint8_t start[RL_PIECES], pinned[RL_PIECES];
    static double op_start[RS * RL_OPS], op_end[RS * RL_OPS];
    static double mv_start[sizeof moves / sizeof *moves], mv_end[sizeof moves / sizeof *moves];
    static struct vp_plan_event ev[4 * (sizeof moves / sizeof *moves) + 2];
    unsigned seed = 4242;
    for (int round = 0; round < 16; round++) {
        uint64_t total = rotating_loop(&l, round, &seed), budget = round % 2 ? total / 2 : total / 3, dropped;
        struct vp_plan p = {.moves = moves, .cap = sizeof moves / sizeof *moves, .resident_at_start = start,
                            .pinned = pinned};
        uint64_t window = vp_replay_window(&l.s, budget, 1000, 0);
        cr_assert_eq(vp_replay_plan(&l.s, budget, window, VP_VISIT_GAP, &p, &dropped), VP_PLAN_OK, "round %d", round);
        cr_assert_eq(p.moves_steps, RS);
        struct vp_plan_times tm = {op_start, op_end, mv_start, mv_end, ev, 0, 0, 0, 0};
        struct vp_bus bus = {1e6, 1e6, 0};
        double step = vp_plan_times(&l.s, budget, &p, &bus, NULL, &tm), compute = 0;
        for (int i = 0; i < RL_OPS; i++) compute += l.ops[i].dur_s;
        cr_assert_geq(step, compute - 1e-9, "round %d: %g s against %g s of compute", round, step, compute);
        cr_assert_geq(step, (double)p.bytes_in / bus.h2d - 1e-9, "round %d", round);
        for (size_t m = 0; m < p.nmoves; m++)
            if (!p.moves[m].out)
                cr_assert_leq(mv_end[m], op_start[p.moves[m].op] + 1e-9, "round %d: piece %u in before op %u",
                              round, p.moves[m].piece, p.moves[m].op);
        cr_assert_leq(most_held(&tm), (int64_t)budget, "round %d: the room held stays within the budget", round);
    }
}
