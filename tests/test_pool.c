/* test_pool.c - pager/pool.c: the helper threads the stream pager remaps
 * on. Every item runs once, a run is over when vp_pool_run returns, the
 * helpers take part, and a run neither waits for nor is disturbed by a
 * helper that wakes late. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "../pager/pool.h"

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static atomic_int entered;
static void enter(void) { atomic_fetch_add(&entered, 1); }

enum { N = 4000 };
struct count {
    atomic_int ran[N];
    atomic_int done;
    pthread_t who[N];
    pthread_t caller; /* items take 50 us on it, 350 us on a helper */
};

static void count_item(void *ctx, size_t i)
{
    struct count *c = ctx;
    atomic_fetch_add(&c->ran[i], 1);
    c->who[i] = pthread_self();
    sleep_us(pthread_equal(c->caller, pthread_self()) ? 50 : 350);
    atomic_fetch_add(&c->done, 1);
}

/* Items [0, n) of the last run all ran on the calling thread. */
static void all_on_caller(const struct count *c, int n)
{
    for (int i = 0; i < n; i++) cr_assert(pthread_equal(c->who[i], pthread_self()), "item %d", i);
}

Test(pool, every_item_runs_once_and_the_run_is_over_when_it_returns)
{
    static struct vp_pool p = VP_POOL_INIT;
    p.want = 4;
    p.enter = enter;
    static struct count c;
    c.caller = pthread_self();
    for (int run = 0; run < 200; run++) {
        size_t n = (size_t)(run % 50) + 1;
        for (size_t i = 0; i < n; i++) atomic_store(&c.ran[i], 0);
        atomic_store(&c.done, 0);
        vp_pool_run(&p, n, count_item, &c);
        cr_assert_eq(atomic_load(&c.done), (int)n, "run %d: %d of %zu items done at return", run,
                     atomic_load(&c.done), n);
        for (size_t i = 0; i < n; i++) cr_assert_eq(atomic_load(&c.ran[i]), 1, "run %d item %zu", run, i);
    }
    vp_pool_stop(&p);
    cr_assert_eq(atomic_load(&entered), 3, "each of the 3 helpers called enter once");
}

/* Items that wait (up to 10 s: a loaded machine may start a helper late)
 * until two threads have taken one. */
struct meet {
    atomic_int threads;
    pthread_t first;
    atomic_int first_set;
};

static void meet_item(void *ctx, size_t i)
{
    (void)i;
    struct meet *m = ctx;
    int expect = 0;
    if (atomic_compare_exchange_strong(&m->first_set, &expect, 1)) {
        m->first = pthread_self();
        atomic_store(&m->threads, 1);
    } else if (!pthread_equal(m->first, pthread_self())) {
        atomic_store(&m->threads, 2);
    }
    for (int k = 0; k < 10000 && atomic_load(&m->threads) < 2; k++) sleep_us(1000);
}

Test(pool, the_helpers_take_part)
{
    static struct vp_pool p = VP_POOL_INIT;
    p.want = 3;
    struct meet m = {0};
    vp_pool_run(&p, 8, meet_item, &m);
    cr_assert_eq(atomic_load(&m.threads), 2, "a helper took an item while the caller held one");
    vp_pool_stop(&p);
}

Test(pool, one_item_or_one_thread_runs_on_the_caller)
{
    static struct vp_pool p = VP_POOL_INIT;
    p.want = 4;
    static struct count c;
    c.caller = pthread_self();
    vp_pool_run(&p, 1, count_item, &c);
    cr_assert(pthread_equal(c.who[0], pthread_self()));
    cr_assert_eq(p.nthreads, 0, "no helper is made for a run of one item");
    static struct vp_pool single = VP_POOL_INIT; /* want 1: the caller alone */
    vp_pool_run(&single, 100, count_item, &c);
    all_on_caller(&c, 100);
    cr_assert_eq(single.nthreads, 0);
    vp_pool_stop(&p);
    vp_pool_stop(&single);
}

Test(pool, after_stop_the_caller_makes_every_call)
{
    static struct vp_pool p = VP_POOL_INIT;
    p.want = 4;
    static struct count c;
    c.caller = pthread_self();
    vp_pool_run(&p, 50, count_item, &c);
    vp_pool_stop(&p);
    cr_assert_eq(p.nthreads, 0);
    atomic_store(&c.done, 0);
    vp_pool_run(&p, 50, count_item, &c);
    cr_assert_eq(atomic_load(&c.done), 50);
    all_on_caller(&c, 50);
}
