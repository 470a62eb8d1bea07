/* test_replay.c - the learned page table's replay policy (policy/replay.h)
 * on its own: each piece's uses and next use around the loop, visits, the
 * window, the pins, and a loop played through the stream policy's wanted
 * set (policy/stream.h) with the replay's ranks, moving what it must and
 * no more than the window besides. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/replay.h"
#include "../policy/stream.h"

/* A step of nops ops over npieces pieces of one size (10 bytes), each op's
 * pieces given as a string of piece letters, "ab" for pieces 0 and 1. */
struct loop {
    struct vp_step s;
    struct vp_step_op ops[64];
    uint32_t touch[256];
    uint64_t bytes[26];
    uint32_t start[27], uses[256];
};

static void make(struct loop *l, const char **ops, size_t nops, size_t npieces)
{
    memset(l, 0, sizeof *l);
    uint32_t k = 0;
    for (size_t i = 0; i < nops; i++) {
        l->ops[i] = (struct vp_step_op){1e-3, k, (uint32_t)strlen(ops[i])};
        for (const char *c = ops[i]; *c; c++) l->touch[k++] = (uint32_t)(*c - 'a');
    }
    for (size_t x = 0; x < npieces; x++) l->bytes[x] = 10;
    l->s = (struct vp_step){nops, npieces, l->ops, l->touch, l->bytes, NULL};
    vp_replay_index(&l->s, l->start, l->uses);
}

Test(replay, each_piece_s_uses_are_listed_in_order)
{
    struct loop l;
    const char *ops[] = {"ab", "b", "ca", "a"};
    make(&l, ops, 4, 3);
    cr_assert(l.start[0] == 0 && l.start[1] == 3 && l.start[2] == 5 && l.start[3] == 6);
    uint32_t want[6] = {0, 2, 3, 0, 1, 2};
    for (int j = 0; j < 6; j++) cr_assert_eq(l.uses[j], want[j], "use %d", j);
}

Test(replay, the_next_use_is_counted_around_the_loop)
{
    uint32_t u[3] = {2, 5, 9};
    cr_assert_eq(vp_replay_next(u, 3, 10, 0), 2);
    cr_assert_eq(vp_replay_next(u, 3, 10, 5), 0, "used by the op at the cursor");
    cr_assert_eq(vp_replay_next(u, 3, 10, 6), 3);
    uint32_t one[1] = {2};
    cr_assert_eq(vp_replay_next(one, 1, 10, 3), 9, "the next step's use");
    cr_assert_eq(vp_replay_next(u, 0, 10, 3), VP_REPLAY_NEVER);
}

Test(replay, a_piece_is_used_otherwise_than_the_table_says_from_its_second_such_launch_within_a_step)
{
    cr_assert(!vp_replay_off_again(0, 7, 100), "the first such launch: perhaps a stale word");
    cr_assert(vp_replay_off_again(7, 9, 100), "again two launches later: a tensor of this run");
    cr_assert(vp_replay_off_again(7, 107, 100), "again a step later, at the same launch");
    cr_assert(!vp_replay_off_again(7, 108, 100), "more than a step later: another stale word");
    cr_assert(!vp_replay_off_again(7, 7, 100), "two words of one launch are one launch");
}

Test(replay, a_launch_too_short_to_read_what_it_points_at_is_thin)
{
    const uint64_t MiB = 1 << 20, GiB = 1 << 30, piece = 64 * MiB;
    cr_assert(vp_replay_thin(5e-6, GiB, piece), "an embedding's lookup: 1 GiB pointed at, 5 us");
    cr_assert(!vp_replay_thin(350e-6, GiB, piece), "a GEMV that reads its 1 GiB weight");
    cr_assert(!vp_replay_thin(40e-6, GiB, piece), "one that may have read a quarter of it");
    cr_assert(!vp_replay_thin(0, GiB, piece), "a launch not timed");
    cr_assert(!vp_replay_thin(1e-9, piece - 1, piece), "less than a piece: cheap to bring in");
    cr_assert(vp_replay_thin(1e-9, piece, piece));
}

Test(replay, uses_close_together_are_one_visit)
{
    uint32_t u[5] = {0, 2, 40, 41, 90};
    cr_assert_eq(vp_replay_visits(u, 5, 100, 10), 2, "90 and 0 meet around the loop");
    cr_assert_eq(vp_replay_visits(u, 5, 200, 10), 3);
    cr_assert_eq(vp_replay_visits(u, 5, 100, 1), 4);
    cr_assert_eq(vp_replay_visits(u, 1, 3, 4), 1, "a step shorter than the gap");
    cr_assert_eq(vp_replay_visits(u, 0, 100, 4), 0);
}

Test(replay, the_window_is_twice_the_largest_op_within_the_budget)
{
    struct loop l;
    const char *ops[] = {"ab", "cde", "f"};
    make(&l, ops, 3, 6);
    cr_assert_eq(vp_replay_window(&l.s, 1000, 10, 0), 60);
    cr_assert_eq(vp_replay_window(&l.s, 1000, 20, 0), 80, "at least four pieces");
    cr_assert_eq(vp_replay_window(&l.s, 1000, 10, 25), 40, "asked for: still four pieces");
    cr_assert_eq(vp_replay_window(&l.s, 50, 10, 0), 50, "at most the budget");
}

/* The pins of l under budget and window: rank[x] its place from 1, 0 when not pinned. */
static uint64_t pins(struct loop *l, uint64_t budget, uint64_t window, uint32_t gap, uint32_t *rank)
{
    uint32_t by[26];
    uint64_t bytes;
    size_t n = vp_replay_pin_order(&l->s, l->start, l->uses, gap, by, NULL);
    size_t k = vp_replay_pin_count(&l->s, by, n, budget, window, &bytes);
    memset(rank, 0, l->s.npieces * sizeof *rank);
    for (size_t j = 0; j < k; j++) rank[by[j]] = (uint32_t)j + 1;
    return bytes;
}

Test(replay, everything_is_pinned_when_the_step_fits)
{
    struct loop l;
    const char *ops[] = {"ab", "cd", "a"};
    make(&l, ops, 3, 5); /* e is never used */
    uint32_t rank[5];
    cr_assert_eq(pins(&l, 40, 30, 1, rank), 40);
    for (int x = 0; x < 4; x++) cr_assert(rank[x], "piece %d", x);
    cr_assert_eq(rank[4], 0, "a piece the step does not use");
}

Test(replay, pieces_of_many_visits_are_pinned_first_and_the_rest_spread)
{
    /* a: used all through the step (an activation: 4 visits with gap 1);
     * b..i: one use each (weights) */
    struct loop l;
    const char *ops[] = {"ab", "c", "ad", "e", "af", "g", "ah", "i"};
    make(&l, ops, 8, 9);
    uint32_t rank[9];
    /* budget 70, window 20: 50 pinned = a and four of the eight weights,
     * every second one in order of use */
    cr_assert_eq(pins(&l, 70, 20, 1, rank), 50);
    cr_assert_eq(rank[0], 1, "the activation first");
    int pinned = 0, in_a_row = 0, most_in_a_row = 0;
    for (int x = 1; x < 9; x++) {
        pinned += rank[x] != 0;
        in_a_row = rank[x] ? in_a_row + 1 : 0;
        if (in_a_row > most_in_a_row) most_in_a_row = in_a_row;
    }
    cr_assert_eq(pinned, 4);
    cr_assert_eq(most_in_a_row, 1, "the pinned weights are spread over the step");
}

Test(replay, the_pins_of_a_smaller_budget_are_some_of_those_of_a_larger_one)
{
    struct loop l;
    const char *ops[] = {"ab", "c", "ad", "e", "af", "g", "ah", "i", "j", "k", "l", "m"};
    make(&l, ops, 12, 13);
    uint32_t small[13], large[13];
    for (uint64_t budget = 30; budget <= 130; budget += 10) {
        pins(&l, budget, 20, 1, small);
        pins(&l, budget + 10, 20, 1, large);
        for (int x = 0; x < 13; x++) cr_assert(!small[x] || large[x], "budget %llu: piece %d", (unsigned long long)budget, x);
    }
}

Test(replay, pinned_pieces_rank_first_the_others_by_next_use)
{
    uint8_t cls;
    uint64_t k1, k2, when;
    vp_replay_rank(3, 100, 50, &cls, &k1, &when);
    cr_assert(cls == VP_SC_PIN && k1 == 3 && when == 151, "pinned: by pin order; comes in by its next use");
    vp_replay_rank(0, 4, 50, &cls, &k1, &when);
    vp_replay_rank(0, 9, 50, &cls, &k2, &when);
    cr_assert(cls == VP_SC_NEXT && k1 == 55 && k2 == 60 && when == 60);
    cr_assert(vp_stream_comes_ahead(1, cls, k2), "a known next use comes ahead");
    vp_replay_rank(0, VP_REPLAY_NEVER, 50, &cls, &k1, &when);
    cr_assert(!vp_stream_comes_ahead(1, cls, k1), "no next use: never ahead");
}

Test(replay, a_loop_larger_than_the_budget_moves_what_it_must_and_at_most_the_window_more)
{
    /* twelve weights used once a step, one activation used by every op */
    struct loop l;
    const char *ops[] = {"ma", "mb", "mc", "md", "me", "mf", "mg", "mh", "mi", "mj", "mk", "ml"}; /* m: the activation */
    make(&l, ops, 12, 13);
    uint64_t budget = 80, window = 40, touched = 130, pinned;
    uint64_t in = vp_replay_play(&l.s, budget, window, 1, &pinned);
    cr_assert_eq(pinned, 40, "the activation and three weights");
    cr_assert_geq(in, touched - budget, "moved %llu", (unsigned long long)in);
    cr_assert_leq(in, touched - budget + window, "moved %llu", (unsigned long long)in);
    cr_assert_eq(vp_replay_play(&l.s, 200, 40, 1, &pinned), 0, "the loop fits: nothing moves");
    cr_assert_eq(pinned, touched);
}

Test(replay, its_play_as_a_plan_moves_the_same_bytes_each_piece_in_before_its_use_within_the_budget)
{
    /* the loop above, timed: 1 ms an op, 10 bytes a piece at 10 kB/s
     * (1 ms a piece: the bus and the compute are alike) */
    struct loop l;
    const char *ops[] = {"ma", "mb", "mc", "md", "me", "mf", "mg", "mh", "mi", "mj", "mk", "ml"};
    make(&l, ops, 12, 13);
    enum { STEPS = VP_REPLAY_PLAN_STEPS };
    static struct vp_move moves[2 * 24 * STEPS + 1];
    uint8_t start[13], pinned[13];
    double op_start[12 * STEPS], op_end[12 * STEPS], mv_start[sizeof moves / sizeof *moves],
        mv_end[sizeof moves / sizeof *moves];
    static struct vp_plan_event ev[4 * (sizeof moves / sizeof *moves) + 2];
    struct vp_bus bus = {1e4, 1e4, 0};
    uint64_t budget = 80, window = 40, played, pinned_bytes, dropped;
    played = vp_replay_play(&l.s, budget, window, 1, &pinned_bytes);
    struct vp_plan p = {.moves = moves, .cap = sizeof moves / sizeof *moves, .resident_at_start = start,
                        .pinned = pinned};
    cr_assert_eq(vp_replay_plan(&l.s, budget, window, 1, &p, &dropped), VP_PLAN_OK);
    cr_assert_eq(p.moves_steps, STEPS);
    cr_assert_eq(p.bytes_in + dropped, played, "the plan's bytes are the play's: %llu + %llu against %llu",
                 (unsigned long long)p.bytes_in, (unsigned long long)dropped, (unsigned long long)played);
    uint64_t kept = 0;
    for (int x = 0; x < 13; x++) kept += pinned[x] ? l.bytes[x] : 0;
    cr_assert_geq(kept, pinned_bytes, "the replay's pins stay all step (and pieces the window keeps): %llu of %llu",
                  (unsigned long long)kept, (unsigned long long)pinned_bytes);
    cr_assert_eq(p.bytes_in, 130 - kept, "what does not stay comes in once a step");
    struct vp_plan_times tm = {op_start, op_end, mv_start, mv_end, ev, 0, 0, 0, 0};
    double step = vp_plan_times(&l.s, budget, &p, &bus, NULL, &tm);
    cr_assert_geq(step, 12e-3 - 1e-12, "at least the compute: %g s", step);
    cr_assert_geq(step, (double)p.bytes_in / bus.h2d - 1e-12, "at least the copies in: %g s", step);
    cr_assert_leq(step, 12e-3 + (double)p.bytes_in / bus.h2d + 1e-9, "at most both one after the other: %g s",
                  step);
    for (size_t k = 0; k < p.nmoves; k++)
        if (!p.moves[k].out)
            cr_assert_leq(mv_end[k], op_start[p.moves[k].op] + 1e-12, "piece %u in before op %u", p.moves[k].piece,
                          p.moves[k].op);
    vp_plan_sort_events(&tm);
    int64_t held = (int64_t)tm.held_at_start;
    for (size_t e = 0; e < tm.nevents; e++) {
        held += tm.events[e].bytes;
        cr_assert_leq(held, (int64_t)budget, "the room held stays within the budget");
    }
    cr_assert_eq(vp_replay_plan(&l.s, 200, window, 1, &p, &dropped), VP_PLAN_OK);
    cr_assert(p.nmoves == 0 && p.bytes_in == 0 && dropped == 0, "the loop fits: no move");
    cr_assert_float_eq(vp_plan_simulate(&l.s, 200, &p, &bus, NULL), 12e-3, 1e-12, "it takes its compute");
}

/* vp_replay_plan of l timed on bus b with window w (a negative value when
 * it does not fit). */
static double timed_window(const struct loop *l, uint64_t budget, uint64_t w, const struct vp_bus *b)
{
    static struct vp_move moves[2 * 256 * VP_REPLAY_PLAN_STEPS + 1];
    uint8_t start[26], pinned[26];
    uint64_t dropped;
    struct vp_plan p = {.moves = moves, .cap = sizeof moves / sizeof *moves, .resident_at_start = start,
                        .pinned = pinned};
    if (vp_replay_plan(&l->s, budget, w, 1, &p, &dropped) != VP_PLAN_OK) return -1;
    return vp_plan_simulate(&l->s, budget, &p, b, NULL);
}

Test(replay, the_window_sized_from_the_kernels_times_beats_the_fixed_rule_where_the_copies_set_the_pace)
{
    /* twelve pieces of 10 bytes, four of them used by one op (the rule's
     * window: twice that, 80 bytes, of a budget of 100), each op 0.1 ms and
     * each piece 1 ms over the bus: the copies set the pace, and every
     * byte of window is a byte less pinned and one more moved a step; the
     * timed choice takes the smallest window it tries (the op's 40 bytes) */
    struct loop l;
    const char *ops[] = {"abcd", "e", "f", "g", "h", "i", "j", "k", "l"};
    make(&l, ops, 9, 12);
    for (int i = 0; i < 9; i++) l.ops[i].dur_s = 1e-4;
    struct vp_bus bus = {1e4, 1e4, 0};
    uint64_t rule = vp_replay_window(&l.s, 100, 10, 0);
    double step, at_rule = timed_window(&l, 100, rule, &bus);
    uint64_t w = vp_replay_window_timed(&l.s, 100, 10, 1, &bus, &step);
    cr_assert_eq(rule, 80);
    cr_assert_eq(w, 40, "the window: %llu", (unsigned long long)w);
    cr_assert_float_eq(step, timed_window(&l, 100, w, &bus), 1e-12, "its time is the one reported");
    cr_assert_lt(step, at_rule * 0.8, "%g s against the rule's %g s", step, at_rule);
}

Test(replay, the_timed_window_is_never_slower_than_the_rule_s_and_without_times_the_copies_alone_choose)
{
    struct loop l;
    const char *ops[] = {"ma", "mb", "mc", "md", "me", "mf", "mg", "mh", "mi", "mj", "mk", "ml"};
    make(&l, ops, 12, 13);
    struct vp_bus bus = {1e4, 1e4, 0};
    double step;
    for (int i = 0; i < 12; i++) l.ops[i].dur_s = 0;
    uint64_t chosen = vp_replay_window_timed(&l.s, 80, 10, 1, &bus, &step);
    cr_assert_gt(step, 0, "no times: timed by the copies");
    cr_assert_leq(step, timed_window(&l, 80, vp_replay_window(&l.s, 80, 10, 0), &bus) * 1.01 + 1e-12);
    cr_assert_float_eq(step, timed_window(&l, 80, chosen, &bus), 1e-12);
    cr_assert_eq(vp_replay_window_timed(&l.s, 40, 10, 1, &bus, &step), 40, "no choice: the rule's (the budget)");
    cr_assert_lt(step, 0);
    unsigned seed = 99;
    for (int round = 0; round < 32; round++) {
        for (int i = 0; i < 12; i++) {
            seed = seed * 1103515245u + 12345u;
            l.ops[i].dur_s = 1e-4 * (1 + (seed >> 24) % 40); /* 0.1 to 4 ms */
        }
        uint64_t budget = 50 + 10 * (uint64_t)(round % 8);
        uint64_t w = vp_replay_window_timed(&l.s, budget, 10, 1, &bus, &step);
        double at_rule = timed_window(&l, budget, vp_replay_window(&l.s, budget, 10, 0), &bus);
        cr_assert(w > 0 && step > 0, "round %d", round);
        cr_assert_leq(step, at_rule * 1.01 + 1e-12, "round %d: %g s against the rule's %g s", round, step, at_rule);
    }
}
