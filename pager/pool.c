/* pool.c - see pool.h. */
#include "pool.h"

#include <stdatomic.h>

/* One call of vp_pool_run: its items, claimed one at a time. */
struct vp_pool_job {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t n;
    atomic_size_t next;
};

/* Takes items of job until none is left (p->mu not held). */
static void pool_work(struct vp_pool_job *job)
{
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n) return;
        job->fn(job->ctx, i);
    }
}

static void *pool_main(void *arg)
{
    struct vp_pool *p = arg;
    if (p->enter) p->enter();
    pthread_mutex_lock(&p->mu);
    uint64_t seen = p->born; /* the run it was made in is to come */
    for (;;) {
        while (!p->stopping && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->stopping) break;
        seen = p->gen;
        struct vp_pool_job *job = p->job;
        if (!job) continue; /* woke after that run ended */
        p->users++;
        pthread_mutex_unlock(&p->mu);
        pool_work(job);
        pthread_mutex_lock(&p->mu);
        if (--p->users == 0) pthread_cond_signal(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void vp_pool_run(struct vp_pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    struct vp_pool_job job = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&job.next, 0);
    pthread_mutex_lock(&p->mu);
    if (n > 1 && !p->tried && !p->stopping) {
        p->tried = 1;
        int want = p->want < 1 ? 1 : p->want > VP_POOL_MAX ? VP_POOL_MAX : p->want;
        p->born = p->gen;
        while (p->nthreads < want - 1 && pthread_create(&p->th[p->nthreads], NULL, pool_main, p) == 0)
            p->nthreads++;
    }
    int helpers = n > 1 && p->nthreads;
    if (helpers) {
        p->job = &job;
        p->gen++;
        pthread_cond_broadcast(&p->go);
    }
    pthread_mutex_unlock(&p->mu);
    pool_work(&job);
    if (!helpers) return;
    /* every item is claimed: wait only for the helpers that joined (one
     * that wakes later finds no run and sleeps again) */
    pthread_mutex_lock(&p->mu);
    p->job = NULL;
    while (p->users) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void vp_pool_stop(struct vp_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->go);
    int n = p->nthreads;
    p->nthreads = 0;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n; i++) pthread_join(p->th[i], NULL);
}

void vp_pool_reset_child(struct vp_pool *p)
{
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->nthreads = p->tried = p->stopping = p->users = 0;
    p->job = NULL;
}

