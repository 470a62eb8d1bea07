/* check.c - the stream pager's books, checked (builds with -Dchecks=true;
 * elsewhere stream_check_locked does nothing).
 *
 * Under mu, at the end of each round and after each free:
 *   - every piece: DEV has a slot of its length and is not bare, HOST has
 *     no slot; busy and pending never below zero;
 *   - the table: allocations sorted and disjoint;
 *   - the slots anyone can see (of pieces, of free lists, of the in-moves
 *     of rounds in flight) <= the slot bytes made (stat slot_bytes)
 *     <= the bytes counted as resident <= the cap. (A slot being made or
 *     destroyed outside mu is in the middle of these, never past them:
 *     its bytes are reserved before it is made and released after it is
 *     gone.)
 * A fault is printed with where it was seen and stops the program
 * (abort): a debug build's check, as an assert is.
 */
#include <stdlib.h>
#include <string.h>

#include "../../books/account.h"
#include "../../common/log.h"
#include "../../common/options.h"
#include "internal.h"

#ifdef VP_CHECKS

static int faults;

#define CHECK(cond, ...)                                                             \
    do {                                                                             \
        if (!(cond)) {                                                               \
            vp_log_always("check failed: " #cond ": after " __VA_ARGS__);         \
            faults++;                                                                \
        }                                                                            \
    } while (0)

/* Checks a's pieces; adds the bytes of the slots they hold to seen[dev]. */
static void check_salloc(const struct salloc *a, uint64_t *seen, const char *where)
{
    CHECK(a->busy >= 0 && a->pending >= 0, "%s: allocation %#llx busy %d pending %d", where,
          (unsigned long long)a->base, a->busy, a->pending);
    CHECK((uint64_t)a->npieces * a->piece >= a->span, "%s: allocation %#llx has %u pieces for %llu bytes", where,
          (unsigned long long)a->base, a->npieces, (unsigned long long)a->span);
    for (uint32_t k = 0; k < a->npieces; k++) {
        const struct piece *p = &a->pc[k];
        CHECK(p->state <= P_MOVING, "%s: piece %u of %#llx in state %d", where, k, (unsigned long long)a->base,
              p->state);
        if (p->state == P_DEV)
            CHECK(p->slot && p->slot->bytes == piece_len(a, k) && !p->bare,
                  "%s: resident piece %u of %#llx: slot %p, bare %d", where, k, (unsigned long long)a->base,
                  (void *)p->slot, p->bare);
        if (p->state == P_HOST)
            CHECK(!p->slot, "%s: piece %u of %#llx on the host holds a slot", where, k, (unsigned long long)a->base);
        if (p->slot) seen[a->dev] += p->slot->bytes;
    }
}

static void check_table(uint64_t *seen, const char *where)
{
    for (size_t i = 0; i < sp.allocs.tab.n; i++) {
        if (i + 1 < sp.allocs.tab.n)
            CHECK(sp.allocs.tab.r[i].base + sp.allocs.tab.r[i].size <= sp.allocs.tab.r[i + 1].base, "%s: allocations %zu and %zu overlap",
                  where, i, i + 1);
        check_salloc(TAB(i), seen, where);
    }
}

/* Adds the slots of the free lists and of the in-moves of rounds in flight. */
static void count_other_slots(uint64_t *seen)
{
    for (int d = 0; d < VP_MAX_DEVICES; d++)
        for (const struct slot *s = sp.free_slots[d]; s; s = s->next) seen[d] += s->bytes;
    for (int r = 0; r < 2; r++) {
        const struct round *rd = &rounds[r];
        for (size_t j = 0; rd->live && j < rd->n; j++)
            if (!rd->m[j].out && rd->m[j].slot) seen[rd->dev] += rd->m[j].slot->bytes;
    }
}

void stream_check_locked(const char *where)
{
    static uint64_t seen[VP_MAX_DEVICES];
    memset(seen, 0, sizeof seen);
    CHECK(sp.moving_any >= 0 && sp.global_pending >= 0, "%s: moving %d, pending %d", where, sp.moving_any,
          sp.global_pending);
    check_table(seen, where);
    count_other_slots(seen);
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        uint64_t made = atomic_load(&sp.ss[d].slot_bytes), resident = vp_acct_get(d, VP_KIND_resident).cur;
        CHECK(seen[d] <= made && made <= resident && resident <= vp_cap_of(d),
              "%s: device %d: slots seen %llu, made %llu, resident %llu, cap %llu", where, d,
              (unsigned long long)seen[d], (unsigned long long)made, (unsigned long long)resident,
              (unsigned long long)vp_cap_of(d));
    }
    if (faults) abort();
}

#else

void stream_check_locked(const char *where) { (void)where; }

#endif
