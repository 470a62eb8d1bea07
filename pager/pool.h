/* pool.h - helper threads that run the items of a pager's work at once. */

#ifndef VPAGE_PAGER_POOL_H
#define VPAGE_PAGER_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Contract
 *   Helpers of a pager thread for independent driver calls: the driver
 *   runs remaps of different address ranges at once (two threads made 16
 *   remaps in half the time on the H100, bench/probes/remap_cost.c).
 *
 *   vp_pool_run(p, n, fn, ctx) calls fn(ctx, i) once for every i in [0, n),
 *   on the calling thread and on up to p->want - 1 helpers, and returns
 *   when every call has returned. It waits only for the helpers that took
 *   part: on a loaded machine a helper may wake after the run ended, and
 *   then finds none. The helpers start at the first run of more than one
 *   item and call p->enter first (the pagers' vp_pager_thread_enter); when
 *   they cannot start, the caller makes every call. One caller at a time
 *   (its pager thread); fn must be safe to call from several threads.
 */
#define VP_POOL_MAX 16
struct vp_pool_job;
struct vp_pool {
    pthread_mutex_t mu;
    pthread_cond_t go, idle;
    pthread_t th[VP_POOL_MAX];
    int want;      /* threads wanted in all, the caller's included (1..VP_POOL_MAX) */
    int nthreads;  /* helpers running */
    int tried, stopping;
    int users;     /* helpers working on the current run */
    uint64_t gen;  /* the current run */
    uint64_t born; /* the run before the helpers were made */
    struct vp_pool_job *job; /* the current run's items (NULL between runs) */
    void (*enter)(void);     /* called first by each helper (may be NULL) */
};
#define VP_POOL_INIT {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER, \
                      .idle = PTHREAD_COND_INITIALIZER, .want = 1}
void vp_pool_run(struct vp_pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);
/* Stops the helpers and waits for them. */
void vp_pool_stop(struct vp_pool *p);
/* The child after fork: no helper is there. */
void vp_pool_reset_child(struct vp_pool *p);

#endif
