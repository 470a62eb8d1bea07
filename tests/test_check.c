/* test_check.c - the stream pager's invariant checker (pager/stream/check.c,
 * built with VP_CHECKS) on books made by hand: quiet on sound books, and
 * stopping the program (abort) on each kind of fault it is there to catch. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../books/account.h"
#include "../common/options.h"
#include "../pager/stream/internal.h"

struct stream_pager sp; /* the checker's view of the pager: these tests make it */
struct round rounds[2];

#define PIECE (2ull << 20)

static struct salloc *a;
static struct slot slot0;
static struct vp_range ranges[2];

/* One allocation of two pieces: piece 0 resident in its slot, piece 1 on the
 * host; the slot's bytes made and counted as resident. */
static void sound_books(void)
{
    setenv("VPAGE_CAP", "8G", 1);
    cr_assert_eq(vp_options_load(), 0);
    a = calloc(1, sizeof *a + 2 * sizeof(struct piece));
    *a = (struct salloc){.base = 1ull << 40, .size = 2 * PIECE, .span = 2 * PIECE, .piece = PIECE, .npieces = 2};
    slot0 = (struct slot){.bytes = PIECE};
    a->pc[0].state = P_DEV;
    a->pc[0].slot = &slot0;
    a->pc[1].state = P_HOST;
    ranges[0] = (struct vp_range){a->base, a->size, a};
    sp.allocs.tab = (struct vp_rangetab){ranges, 1, 2};
    atomic_store(&sp.ss[0].slot_bytes, PIECE);
    cr_assert_eq(vp_acct_reserve(0, VP_KIND_resident, PIECE), 0);
}

Test(check, sound_books_pass)
{
    sound_books();
    stream_check_locked("a sound round");
}

Test(check, a_resident_piece_without_a_slot_stops_the_program, .signal = SIGABRT)
{
    sound_books();
    a->pc[0].slot = NULL;
    stream_check_locked("a round");
}

Test(check, a_piece_on_the_host_holding_a_slot_stops_the_program, .signal = SIGABRT)
{
    sound_books();
    a->pc[1].slot = &slot0;
    stream_check_locked("a round");
}

Test(check, slots_made_past_the_bytes_counted_stop_the_program, .signal = SIGABRT)
{
    sound_books();
    atomic_store(&sp.ss[0].slot_bytes, 2 * PIECE);
    stream_check_locked("a round");
}

Test(check, slots_seen_past_the_slots_made_stop_the_program, .signal = SIGABRT)
{
    sound_books();
    static struct slot spare = {.bytes = PIECE};
    sp.free_slots[0] = &spare; /* a slot no one made */
    stream_check_locked("a round");
}

Test(check, overlapping_allocations_stop_the_program, .signal = SIGABRT)
{
    sound_books();
    ranges[1] = (struct vp_range){a->base + PIECE, PIECE, a};
    sp.allocs.tab.n = 2;
    stream_check_locked("a round");
}

Test(check, resident_bytes_past_the_cap_stop_the_program, .signal = SIGABRT)
{
    sound_books();
    vp_acct_force(0, VP_KIND_resident, 8ull << 30); /* only a bug could: reservations stop at the cap */
    stream_check_locked("a round");
}
