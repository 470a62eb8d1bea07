/* test_ptrmap.c - the pointer map against a plain array, under a seeded
 * random mix of puts, takes and swaps with keys that collide on purpose. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "../books/ptrmap.h"

#define N 4096

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(ptrmap, matches_a_reference_under_random_operations)
{
    static struct vp_map m = VP_MAP_INIT;
    static uint64_t ref[N]; /* ref[i]: bytes stored under key i+1, 0 = absent */
    uint64_t seed = 42;
    size_t live = 0;
    for (int step = 0; step < 200000; step++) {
        /* keys spaced by 1<<20 like device pointers, so they crowd the same slots */
        uint64_t i = rng(&seed) % N, key = (i + 1) << 20;
        uint64_t op = rng(&seed) % 3, v = rng(&seed) | 1;
        struct vp_rec r = {v, 0, (int16_t)(i % 7), 0, 0}, out;
        if (op == 0) {
            cr_assert_eq(vp_map_put(&m, key, r), 0);
            live += ref[i] == 0;
            ref[i] = v;
        } else if (op == 1) {
            int had = vp_map_take(&m, key, &out);
            cr_assert_eq(had, ref[i] != 0, "step %d key %llu", step, (unsigned long long)key);
            if (had) cr_assert_eq(out.bytes, ref[i]);
            live -= ref[i] != 0;
            ref[i] = 0;
        } else {
            int had = vp_map_swap(&m, key, r, &out);
            cr_assert_eq(had, ref[i] != 0);
            if (had) cr_assert_eq(out.bytes, ref[i]);
            live += ref[i] == 0;
            ref[i] = v;
        }
        if (step % 5000 == 0) {
            cr_assert_eq(vp_map_size(&m), live);
            for (uint64_t k = 0; k < N; k++) {
                int had = vp_map_get(&m, (k + 1) << 20, &out);
                cr_assert_eq(had, ref[k] != 0, "step %d: key %llu lost or invented", step, (unsigned long long)k);
                if (had) cr_assert_eq(out.bytes, ref[k]);
            }
        }
    }
}

Test(ptrmap, key_zero_is_refused)
{
    static struct vp_map m = VP_MAP_INIT;
    struct vp_rec r = {1, 0, 0, 0, 0};
    cr_assert_eq(vp_map_put(&m, 0, r), -1);
    cr_assert_eq(vp_map_size(&m), 0);
    /* nor found where slots are empty (freeing NULL is legal and must find nothing) */
    cr_assert_eq(vp_map_put(&m, 1 << 20, r), 0);
    struct vp_rec out;
    cr_assert_eq(vp_map_get(&m, 0, &out), 0);
    cr_assert_eq(vp_map_take(&m, 0, &out), 0);
    cr_assert_eq(vp_map_size(&m), 1);
}
