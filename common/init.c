/* init.c - lazy start, fork handling and the exit dump.
 *
 * Nothing runs at load time: the library may be preloaded into every
 * process of a job (shells, timeout, compilers). vp_init() runs once, on
 * the first lookup or call of a driver function, in whichever thread makes
 * it. A driver call vpage makes while starting (or anything that reaches
 * back into vpage from the same thread) sees "not ready" and passes through.
 *
 * Lock order (outer first), for the fork handler and anyone adding locks:
 *   registry mutex -> tensor maps -> ptrs -> handles -> arrays -> pools ->
 *   async cache (pager/apool.h) -> its block map -> weights -> pager ->
 *   stream pager -> its event ring; the trace's lock
 *   (common/trace.h) is a leaf under any of them. The fork handler does not
 *   take it: the child makes it anew and drops the parent's buffer.
 * No vpage lock is held across a driver call, except in pager/stream.c
 * (event queries and records; its contract lists them).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "../interpose/driver.h"
#include "../interpose/registry.h"
#include "../pager/mem.h"
#include "../pager/paging.h"
#include "../pager/weights.h"
#include "log.h"
#include "options.h"
#include "stats.h"
#include "trace.h"
#include "vp.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int state; /* 0 not yet, 1 ready, -1 no driver */
static atomic_int refused;
static _Thread_local int starting;

static void before_fork(void)
{
    vp_registry_lock();
    vp_mem_lock_all();
    vp_weights_lock();
    vp_pager_lock();
}

static void after_fork_parent(void)
{
    vp_pager_unlock();
    vp_weights_unlock();
    vp_mem_unlock_all();
    vp_registry_unlock();
}

/* The child has none of the parent's device memory (CUDA contexts do not
 * survive fork): it starts its books from zero. */
static void after_fork_child(void)
{
    vp_pager_reset_child(); /* re-initialises its (held) lock */
    vp_weights_unlock();
    vp_mem_unlock_all();
    vp_registry_unlock();
    vp_mem_reset_child();
    vp_weights_reset_child();
    vp_stats_reset();
    vp_trace_reset_child();
}

static void start(void)
{
    starting = 1;
    if (vp_options_load()) atomic_store(&refused, 1);
    if (vp_opt.help) vp_options_print();
    int rc = vp_driver_open();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    atomic_store(&state, rc == 0 ? 1 : -1);
    starting = 0;
}

int vp_init(void)
{
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (vp_likely(s)) return s > 0 ? 0 : -1;
    if (starting) return -1;
    pthread_once(&once, start);
    return atomic_load(&state) > 0 ? 0 : -1;
}

int vp_refused(void) { return atomic_load_explicit(&refused, memory_order_relaxed); }

__attribute__((destructor)) static void vp_fini(void)
{
    if (atomic_load(&state) > 0) {
        vp_pager_shutdown();
        vp_stats_at_exit();
        vp_trace_close();
    }
}
