/* test_policy.c - the demand and streaming policies on their own
 * (policy/demand.h, policy/stream.h): pure functions, driven by a small
 * model of the pager. */
#include <criterion/criterion.h>
#include <string.h>

#include "../policy/demand.h"
#include "../policy/stream.h"

Test(policy, demand_range_from_the_pointer_on_at_most_most_bytes)
{
    uint64_t first, count;
    vp_policy_demand_range(10 << 20, 3 << 20, 2 << 20, 4 << 20, &first, &count);
    cr_assert_eq(first, 1);
    cr_assert_eq(count, 2);
    vp_policy_demand_range(10 << 20, 9 << 20, 2 << 20, 100 << 20, &first, &count);
    cr_assert_eq(first, 4);
    cr_assert_eq(count, 1, "the last, partial chunk");
    vp_policy_demand_range(10 << 20, 0, 2 << 20, 1, &first, &count);
    cr_assert_eq(count, 1, "at least the chunk holding the pointer");
}

Test(policy, next_use_from_the_last_interval)
{
    cr_assert_eq(vp_policy_next_use(0, 5, 6), VP_NEXT_UNKNOWN);
    cr_assert_eq(vp_policy_next_use(10, 20, 21), 30);
    cr_assert_eq(vp_policy_next_use(10, 20, 40), 30, "late, but by less than an interval");
    cr_assert_eq(vp_policy_next_use(10, 20, 41), VP_NEXT_STALE);
}

/* A model of the pager: n chunks of one byte each, room for cap of them,
 * a program that touches chunk 0..n-1 in order, step after step. Returns
 * the chunks brought in during the last step. */
static int run_loop(enum vp_policy_kind kind, int n, int cap, int steps, int *resident_out)
{
    uint64_t prev[64] = {0}, last[64] = {0}, tick = 0;
    int resident[64] = {0}, nres = 0, moved = 0;
    for (int s = 0; s < steps; s++) {
        moved = 0;
        for (int i = 0; i < n; i++) {
            tick++;
            prev[i] = last[i];
            last[i] = tick;
            if (resident[i]) continue;
            struct vp_cand r = {vp_policy_next_use(prev[i], last[i], tick), last[i], 1, &resident[i], 0};
            struct vp_cand v[64];
            int nv = 0;
            for (int j = 0; j < n; j++)
                if (resident[j] && j != i) v[nv++] = (struct vp_cand){vp_policy_next_use(prev[j], last[j], tick), last[j], 1, &resident[j], 0};
            size_t k = vp_policy_plan(kind, &r, 1, v, (size_t)nv, (uint64_t)(cap - nres));
            for (size_t j = 0; j < k; j++) {
                *(int *)v[j].ref = 0;
                nres--;
            }
            if (r.admit) {
                resident[i] = 1;
                nres++;
                moved++;
            }
            cr_assert_leq(nres, cap);
        }
    }
    *resident_out = nres;
    return moved;
}

Test(policy, a_loop_larger_than_the_room_keeps_a_stable_part_resident)
{
    int nres;
    int moved = run_loop(VP_POLICY_LOOP, 16, 6, 5, &nres);
    cr_assert_eq(nres, 6, "the room is used");
    cr_assert_eq(moved, 0, "in steady state nothing moves");
    cr_assert_eq(run_loop(VP_POLICY_LRU, 16, 6, 5, &nres), 16, "LRU moves every chunk of the loop every step");
    cr_assert_eq(nres, 6);
}

Test(policy, a_loop_that_fits_is_brought_in_once)
{
    int nres;
    for (int kind = VP_POLICY_LRU; kind <= VP_POLICY_LOOP; kind++) {
        cr_assert_eq(run_loop((enum vp_policy_kind)kind, 5, 6, 1, &nres), 5);
        cr_assert_eq(run_loop((enum vp_policy_kind)kind, 5, 6, 4, &nres), 0);
        cr_assert_eq(nres, 5);
    }
}

Test(policy, sooner_use_pushes_out_later_use)
{
    /* a chunk needed again soon (an activation) displaces one needed late
     * (a weight of a later layer); a chunk needed later displaces nothing */
    struct vp_cand r[2] = {{100, 50, 4, NULL, 0}, {5000, 60, 4, NULL, 0}};
    struct vp_cand v[2] = {{900, 10, 4, NULL, 0}, {3000, 20, 4, NULL, 0}};
    size_t k = vp_policy_plan(VP_POLICY_LOOP, r, 2, v, 2, 0);
    cr_assert_eq(k, 1);
    cr_assert_eq(v[0].next, 3000, "the latest next use goes first");
    cr_assert_eq(r[0].next, 100);
    cr_assert(r[0].admit);
    cr_assert_not(r[1].admit);
}

Test(policy, room_is_used_before_anything_is_evicted)
{
    struct vp_cand r[2] = {{10, 5, 4, NULL, 0}, {20, 6, 4, NULL, 0}};
    struct vp_cand v[1] = {{VP_NEXT_STALE, 1, 4, NULL, 0}};
    cr_assert_eq(vp_policy_plan(VP_POLICY_LOOP, r, 2, v, 1, 8), 0);
    cr_assert(r[0].admit && r[1].admit);
}

Test(policy, reclaim_takes_latest_next_use_first)
{
    struct vp_cand v[3] = {{5, 3, 4, NULL, 0}, {VP_NEXT_STALE, 1, 4, NULL, 0}, {50, 2, 4, NULL, 0}};
    cr_assert_eq(vp_policy_victims(VP_POLICY_LOOP, v, 3, 6), 2);
    cr_assert_eq(v[0].next, VP_NEXT_STALE);
    cr_assert_eq(v[1].next, 50);
    cr_assert_eq(vp_policy_victims(VP_POLICY_LRU, v, 3, 6), 2);
    cr_assert_eq(v[0].last, 1, "least recently used first");
    cr_assert_eq(v[1].last, 2);
}

Test(policy, static_placement_keeps_half_the_cap_for_hot_chunks)
{
    const uint64_t cap = 100;
    cr_assert(vp_policy_place(0, 5, 10, 100, cap), "a cold chunk while the room is more than half");
    cr_assert_not(vp_policy_place(0, 5, 10, 55, cap), "a cold chunk may not take the last half");
    cr_assert_not(vp_policy_place(10, 5000, 10, 55, cap), "nor one used once a long loop");
    cr_assert(vp_policy_place(4990, 5000, 10, 55, cap), "a chunk in hot use may");
    cr_assert_not(vp_policy_place(4990, 5000, 10, 5, cap), "but only into the room there is");
}

/* ---- streaming (policy/stream.h) ---- */

Test(policy, stream_window_is_a_quarter_of_the_budget_at_least_four_pieces)
{
    cr_assert_eq(vp_stream_window(400, 10, 0), 100);
    cr_assert_eq(vp_stream_window(100, 10, 0), 40, "four pieces");
    cr_assert_eq(vp_stream_window(30, 10, 0), 30, "never more than the budget");
    cr_assert_eq(vp_stream_window(400, 10, 60), 60, "VPAGE_STREAM_WINDOW");
    cr_assert_eq(vp_stream_window(400, 10, 20), 40, "at least four pieces");
}

Test(policy, stream_pins_an_even_share_spread_over_the_loop)
{
    /* 40 pieces of 10 bytes (400 cold), room for 100 pinned: every fourth */
    double acc = 0;
    uint64_t pinned = 0;
    int pins[40], n = 0;
    for (int i = 0; i < 40; i++) {
        pins[i] = vp_stream_pin(&acc, 10, pinned, 100, 400);
        if (pins[i]) {
            pinned += 10;
            n++;
        }
    }
    cr_assert_eq(n, 10, "pinned %d pieces, room for 10", n);
    for (int i = 0; i + 4 <= 40; i += 4) {
        int in_four = pins[i] + pins[i + 1] + pins[i + 2] + pins[i + 3];
        cr_assert_eq(in_four, 1, "pieces %d..%d: %d pinned, want one in every four", i, i + 3, in_four);
    }
}

Test(policy, stream_pins_everything_that_fits_and_nothing_past_the_room)
{
    double acc = 0;
    cr_assert(vp_stream_pin(&acc, 10, 0, 100, 80), "all the cold bytes fit");
    cr_assert(!vp_stream_pin(&acc, 10, 95, 100, 400), "past the room");
    cr_assert(!vp_stream_pin(&acc, 0, 0, 100, 400));
}

Test(policy, stream_ranks_asked_for_then_hot_then_pinned_then_by_next_use_then_guesses)
{
    struct vp_spc c[9] = {
        {.key = 50, .bytes = 10, .cls = VP_SC_NEXT},
        {.key = 2, .bytes = 10, .cls = VP_SC_PIN},   /* pinned second */
        {.key = 7, .bytes = 10, .cls = VP_SC_HOT},   /* used at tick 7 */
        {.key = vp_stream_guess_key(100, 60), .bytes = 10, .cls = VP_SC_NEXT}, /* used once, at 60 */
        {.key = 20, .bytes = 10, .cls = VP_SC_NEXT},
        {.key = 3, .bytes = 10, .cls = VP_SC_NOW},   /* asked for, used at 3 */
        {.key = 1, .bytes = 10, .cls = VP_SC_PIN},   /* pinned first */
        {.key = vp_stream_guess_key(100, 90), .bytes = 10, .cls = VP_SC_NEXT}, /* used once, at 90 */
        {.key = 9, .bytes = 10, .cls = VP_SC_HOT},
    };
    uint64_t got = vp_stream_desire(c, 9, 55);
    cr_assert_eq(got, 50, "whole pieces that fit");
    uint64_t order[9] = {3, 9, 7, 1, 2, 20, 50, vp_stream_guess_key(100, 90), vp_stream_guess_key(100, 60)};
    for (int i = 0; i < 9; i++) cr_assert_eq(c[i].key, order[i], "rank %d has key %llu", i, (unsigned long long)c[i].key);
    for (int i = 0; i < 9; i++) cr_assert_eq(c[i].want, i < 5, "rank %d", i);
    cr_assert_eq(c[0].cls, VP_SC_NOW);
}

Test(policy, stream_wants_a_prefix_only)
{
    /* a big piece that does not fit ends the wanted set: a smaller one
     * ranked after it is not let in ahead of it */
    struct vp_spc c[3] = {
        {.key = 1, .bytes = 10, .cls = VP_SC_NEXT},
        {.key = 2, .bytes = 50, .cls = VP_SC_NEXT},
        {.key = 3, .bytes = 5, .cls = VP_SC_NEXT},
    };
    cr_assert_eq(vp_stream_desire(c, 3, 30), 10);
    cr_assert(c[0].want && !c[1].want && !c[2].want);
}

Test(policy, uses_a_layer_apart_are_one_visit_and_reuse_is_measured_between_visits)
{
    struct vp_uses u = {0};
    cr_assert(!vp_uses_note(&u, 100), "a first use asks nothing");
    cr_assert(!vp_uses_note(&u, 102), "two launches later: the same visit");
    cr_assert_eq(u.visit, 100);
    cr_assert(vp_uses_visiting(&u, 110));
    cr_assert(!vp_uses_hot(&u, 110), "a weight read twice in a row is not hot");
    cr_assert(!vp_uses_visiting(&u, 102 + VP_VISIT_GAP + 1));
    cr_assert(vp_uses_note(&u, 2100), "a step later: a long reuse, the pinning question");
    cr_assert_eq(u.prev_visit, 100);
    cr_assert_eq(vp_uses_next(&u, 2200), 4100, "the next visit a step after this one");
    cr_assert(!vp_uses_hot(&u, 2101));

    struct vp_uses a = {0}; /* an activation, used every 40 launches */
    for (uint64_t t = 40; t <= 400; t += 40) vp_uses_note(&a, t);
    cr_assert(vp_uses_hot(&a, 400));
    cr_assert(!vp_uses_hot(&a, 400 + 4 * VP_HOT_GAP + 1), "hot use ends");

    struct vp_uses b = {0}; /* a workspace, used by every launch */
    for (uint64_t t = 1; t < VP_HOT_GAP; t++) vp_uses_note(&b, t);
    cr_assert(!vp_uses_hot(&b, VP_HOT_GAP - 1));
    vp_uses_note(&b, VP_HOT_GAP + 1);
    cr_assert(vp_uses_hot(&b, VP_HOT_GAP + 1), "one visit as long as VP_HOT_GAP");
}

/* ---- the decisions that lived inside the pagers (issue 16) ---- */

#define GiB_ (1ull << 30)
#define MiB_ (1ull << 20)

Test(policy, a_pointer_touches_at_most_a_quarter_of_the_cap_and_anything_without_one)
{
    cr_assert_eq(vp_policy_touch_most(8 * GiB_), 2 * GiB_);
    cr_assert_eq(vp_policy_touch_most(UINT64_MAX), UINT64_MAX, "no cap: no limit, not a quarter of 2^64");
}

Test(policy, a_card_more_than_a_quarter_larger_than_the_cap_keeps_evicted_memory)
{
    cr_assert(vp_policy_keeps_memory(80 * GiB_, 8 * GiB_));
    cr_assert(!vp_policy_keeps_memory(10 * GiB_, 8 * GiB_), "exactly 1.25x: the pager may evict");
    cr_assert(vp_policy_keeps_memory(10 * GiB_ + 1, 8 * GiB_));
    cr_assert(!vp_policy_keeps_memory(80 * GiB_, UINT64_MAX), "no cap: nothing to keep room for");
}

Test(policy, an_eviction_is_futile_when_less_than_half_of_it_shows_up)
{
    cr_assert(vp_policy_eviction_futile(100, 149, 100));
    cr_assert(!vp_policy_eviction_futile(100, 150, 100));
    cr_assert(!vp_policy_eviction_futile(100, 100, 0), "nothing evicted: nothing to judge");
}

Test(policy, admission_free_rides_where_memory_is_kept_else_takes_room)
{
    struct vp_chunk_view warm = {10, 20, 64 * MiB_, 1, 0}, cold = {0, 20, 64 * MiB_, 0, 1};
    cr_assert_eq(vp_policy_admit(&warm, 1, 0, 8 * GiB_), VP_ADMIT_FREE, "kept memory: no room needed");
    cr_assert_eq(vp_policy_admit(&warm, 0, 0, 8 * GiB_), VP_ADMIT_NO, "not admitted by the plan, no room");
    cr_assert_eq(vp_policy_admit(&cold, 0, 64 * MiB_, 8 * GiB_), VP_ADMIT_ROOM);
    cr_assert_eq(vp_policy_admit(&cold, 0, 64 * MiB_ - 1, 8 * GiB_), VP_ADMIT_NO, "does not fit");
    /* static placement: a chunk used once a loop only while half the cap stays free */
    cr_assert_eq(vp_policy_admit(&cold, 1, 4 * GiB_ + 64 * MiB_, 8 * GiB_), VP_ADMIT_ROOM);
    cr_assert_eq(vp_policy_admit(&cold, 1, 4 * GiB_, 8 * GiB_), VP_ADMIT_NO);
}

static struct vp_piece_view piece_used(uint64_t prev_visit, uint64_t visit, uint64_t last)
{
    struct vp_piece_view v;
    memset(&v, 0, sizeof v);
    v.u = (struct vp_uses){visit, prev_visit, last};
    v.on_host = 1;
    return v;
}

Test(policy, a_piece_ranks_by_what_the_pager_knows_of_it)
{
    uint8_t cls;
    uint64_t key;
    struct vp_piece_view v = piece_used(0, 0, 0);
    vp_stream_rank_piece(&v, 1000, 1, &cls, &key);
    cr_assert(cls == VP_SC_NEXT && key == VP_NEXT_STALE, "never used (placed): last");
    v = piece_used(100, 600, 600);
    v.requested = 1;
    vp_stream_rank_piece(&v, 1000, 1, &cls, &key);
    cr_assert(cls == VP_SC_NOW && key == 600, "asked for: first, by its use");
    v.requested = 0;
    v.pinned = 1;
    v.pin_seq = 7;
    vp_stream_rank_piece(&v, 1000, 1, &cls, &key);
    cr_assert(cls == VP_SC_PIN && key == 7, "pinned: by pinning order");
    v.pinned = 0;
    vp_stream_rank_piece(&v, 1000, 1, &cls, &key);
    cr_assert(cls == VP_SC_NEXT && key == 1100, "by its next visit, one interval on: %llu", (unsigned long long)key);
    v.ahead_at = 700; /* came in ahead after its last use, and left unused */
    vp_stream_rank_piece(&v, 1000, 1, &cls, &key);
    cr_assert(cls == VP_SC_NEXT && key == VP_NEXT_STALE, "a wrong prediction is not made again");
    v = piece_used(990, 995, 999);
    vp_stream_rank_piece(&v, 1000, 1, &cls, &key);
    cr_assert(cls == VP_SC_HOT && key == 999, "visits a few launches apart: hot");
    v = piece_used(100, 600, 600);
    vp_stream_rank_piece(&v, 1000, 0, &cls, &key);
    cr_assert(cls == VP_SC_NEXT && key == VP_NEXT_STALE, "ahead off: a piece on the host does not come");
    v.on_host = 0;
    vp_stream_rank_piece(&v, 1000, 0, &cls, &key);
    cr_assert(cls == VP_SC_NEXT && key == vp_stream_guess_key(1000, 600), "ahead off: resident ones by recency");
}

Test(policy, only_what_the_loop_predicts_comes_ahead)
{
    cr_assert(vp_stream_comes_ahead(1, VP_SC_NEXT, 1234));
    cr_assert(!vp_stream_comes_ahead(1, VP_SC_NEXT, vp_stream_guess_key(10, 5)), "a guess does not come ahead");
    cr_assert(vp_stream_comes_ahead(1, VP_SC_PIN, 3));
    cr_assert(!vp_stream_comes_ahead(0, VP_SC_PIN, 3), "ahead off: nothing comes ahead");
}

Test(policy, demand_paging_and_hot_pieces_pin_nothing)
{
    double acc = 0;
    cr_assert(!vp_stream_pin_asked(&acc, 0, 0, MiB_, 0, GiB_, MiB_));
    cr_assert(!vp_stream_pin_asked(&acc, 1, 1, MiB_, 0, GiB_, MiB_));
    cr_assert(vp_stream_pin_asked(&acc, 1, 0, MiB_, 0, GiB_, MiB_));
    cr_assert_eq(acc, 0, "nothing accrued while everything fits");
}

Test(policy, the_budget_is_split_into_pins_and_a_window)
{
    uint64_t piece = 64 * MiB_;
    struct vp_stream_census fits = {8 * GiB_, piece, 1 * GiB_, 5 * GiB_, 0, 256 * MiB_};
    struct vp_stream_split s = vp_stream_split_budget(&fits);
    cr_assert_eq(s.keep_free, 0, "everything fits: no window kept");
    cr_assert_eq(s.reserve, 0, "everything fits: nothing reserved");
    cr_assert_eq(s.pin_room, 7 * GiB_, "all but the hot pieces may be pinned");
    struct vp_stream_census over = {8 * GiB_, piece, 1 * GiB_, 7 * GiB_ + 128 * MiB_, 0, 256 * MiB_};
    s = vp_stream_split_budget(&over);
    cr_assert_eq(s.window, 128 * MiB_ + 4 * piece, "a small overflow needs a small window");
    cr_assert_eq(s.pin_room, 7 * GiB_ - s.window - s.reserve);
    cr_assert_eq(s.reserve, 256 * MiB_, "VPAGE_STREAM_RESERVE");
    cr_assert_eq(s.keep_free, s.window + s.reserve, "the reserve is kept free of pins too");
    struct vp_stream_census big = {8 * GiB_, piece, 1 * GiB_, 27 * GiB_, 0, 256 * MiB_};
    s = vp_stream_split_budget(&big);
    cr_assert_eq(s.window, 2 * GiB_, "a large one: a quarter of the budget");
    struct vp_stream_census one = {GiB_, piece, 0, 2 * GiB_, 0, 256 * MiB_};
    cr_assert_eq(vp_stream_split_budget(&one).reserve, 128 * MiB_, "at most an eighth of the budget");
    struct vp_stream_census small = {256 * MiB_, piece, 0, GiB_, 0, 256 * MiB_};
    cr_assert_eq(vp_stream_split_budget(&small).reserve, 0, "an eighth is less than a piece: none");
    cr_assert_eq(vp_stream_reserve(10 * MiB_, 20 * MiB_, 256 * MiB_, MiB_), MiB_, "in whole pieces");
    struct vp_stream_census asked = {8 * GiB_, piece, 1 * GiB_, 27 * GiB_, 3 * GiB_, 0};
    cr_assert_eq(vp_stream_split_budget(&asked).window, 3 * GiB_, "VPAGE_STREAM_WINDOW");
    struct vp_stream_census hot = {8 * GiB_, piece, 9 * GiB_, 27 * GiB_, 0, 0};
    cr_assert_eq(vp_stream_split_budget(&hot).pin_room, 0, "hot pieces past the budget: no pins");
}

Test(policy, the_latest_pinned_are_unpinned_first_until_the_pins_fit)
{
    struct vp_pin p[4] = {{1, 10, NULL}, {4, 10, NULL}, {2, 10, NULL}, {3, 10, NULL}};
    size_t k = vp_stream_unpins(p, 4, 40, 25);
    cr_assert_eq(k, 2);
    cr_assert(p[0].seq == 4 && p[1].seq == 3, "the two pinned last");
    cr_assert_eq(vp_stream_unpins(p, 4, 40, 40), 0, "they fit");
    cr_assert_eq(vp_stream_unpins(p, 4, 40, 0), 4);
}

Test(policy, an_operation_waits_while_the_room_may_be_busy_and_never_past_the_most)
{
    double period = VP_STREAM_WAIT_MS / 1000.0, most = VP_STREAM_WAIT_MAX_MS / 1000.0;
    cr_assert(vp_stream_wait_on(period, 1, 0), "operations in flight: their room may come");
    cr_assert(vp_stream_wait_on(2 * period, 0, 1), "they just ended: one more period");
    cr_assert(!vp_stream_wait_on(period, 0, 0), "nothing in flight: the pager is not serving it");
    cr_assert(!vp_stream_wait_on(most + 0.001, 1, 1), "never past the most");
}
