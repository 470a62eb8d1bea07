/* stats.h - counters per entry point.
 *
 * Contract
 *   Per hook (common/hooks.h) the counters of VP_HOOK_COUNTERS, relaxed
 *   atomics, bumped on every call: safe from any thread, never locked.
 *   Counted bytes live in books/account.h; the report (core/report.h)
 *   joins both with the kernel registry and the pager's stats.
 */
#ifndef VPAGE_COMMON_STATS_H
#define VPAGE_COMMON_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "hooks.h"

/*  X(counter, meaning) */
#define VP_HOOK_COUNTERS(X)                                        \
    X(calls, "calls")                                              \
    X(failed, "calls the driver failed")                           \
    X(refused, "allocations refused by the cap")                   \
    X(bytes, "bytes the driver allocated through this entry point")

enum vp_counter {
#define VP_X(c, doc) VP_CTR_##c,
    VP_HOOK_COUNTERS(VP_X)
#undef VP_X
    VP_CTR_COUNT
};

void vp_stat_add(enum vp_hook_id hook, enum vp_counter c, uint64_t n);
uint64_t vp_stat_get(enum vp_hook_id hook, enum vp_counter c);
static inline void vp_stat_call(enum vp_hook_id hook) { vp_stat_add(hook, VP_CTR_calls, 1); }

/* Live bytes per entry point: what allocations made through hook hold now
 * (and at most), added when an allocation is recorded and taken off when
 * it is freed, whichever entry point frees it. For pool allocations these
 * are the bytes asked for; the pool's reservation is the pool gauge. */
void vp_stat_live_add(enum vp_hook_id hook, uint64_t bytes);
void vp_stat_live_sub(enum vp_hook_id hook, uint64_t bytes);

/* What allocations made through hook hold now (peak 0) or held at most. */
uint64_t vp_stat_live(enum vp_hook_id hook, int peak);

/* The name of a counter (its field in the report). */
const char *vp_counter_name(enum vp_counter c);

/* Forgets every counter (child after fork). */
void vp_stats_reset(void);

#endif
