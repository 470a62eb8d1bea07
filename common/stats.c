/* stats.c - see stats.h. */
#define _GNU_SOURCE
#include "stats.h"

#include <stdatomic.h>

static atomic_uint_fast64_t counters[VP_HOOK_COUNT][VP_CTR_COUNT];
static atomic_uint_fast64_t live[VP_HOOK_COUNT], live_peak[VP_HOOK_COUNT];

void vp_stat_live_add(enum vp_hook_id hook, uint64_t bytes)
{
    uint64_t now = atomic_fetch_add(&live[hook], bytes) + bytes;
    uint64_t p = atomic_load(&live_peak[hook]);
    while (now > p && !atomic_compare_exchange_weak(&live_peak[hook], &p, now)) {}
}

void vp_stat_live_sub(enum vp_hook_id hook, uint64_t bytes)
{
    uint64_t c = atomic_load(&live[hook]);
    while (!atomic_compare_exchange_weak(&live[hook], &c, c >= bytes ? c - bytes : 0)) {}
}

void vp_stat_add(enum vp_hook_id hook, enum vp_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[hook][c], n, memory_order_relaxed);
}

uint64_t vp_stat_get(enum vp_hook_id hook, enum vp_counter c)
{
    return atomic_load_explicit(&counters[hook][c], memory_order_relaxed);
}

void vp_stats_reset(void)
{
    for (int h = 0; h < VP_HOOK_COUNT; h++) {
        for (int c = 0; c < VP_CTR_COUNT; c++) atomic_store(&counters[h][c], 0);
        atomic_store(&live[h], 0);
        atomic_store(&live_peak[h], 0);
    }
}

static const char *const hook_names[] = {
#define VP_X(ret, name, params, args) #name,
    VP_HOOKS(VP_X)
#undef VP_X
};

const char *vp_hook_name(enum vp_hook_id id) { return id < VP_HOOK_COUNT ? hook_names[id] : "?"; }

uint64_t vp_stat_live(enum vp_hook_id hook, int peak)
{
    return atomic_load(peak ? &live_peak[hook] : &live[hook]);
}

const char *vp_counter_name(enum vp_counter c)
{
    static const char *const names[] = {
#define VP_X(c, doc) #c,
        VP_HOOK_COUNTERS(VP_X)
#undef VP_X
    };
    return c < VP_CTR_COUNT ? names[c] : "?";
}
