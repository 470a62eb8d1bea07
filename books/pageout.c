/* pageout.c - see pageout.h. */
#define _GNU_SOURCE
#include "pageout.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21 /* Linux 5.4; older C library headers lack the name */
#endif

#define QMAX 256 /* ranges queued at most */

struct range {
    uintptr_t addr;
    size_t len;
    int tag;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    struct range q[QMAX]; /* a ring: q[head] is given back next */
    size_t head, n;
    int busy;    /* the thread took a range and is giving it back */
    int started; /* 1: the thread runs; -1: it could not start */
} po = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER};

static void (*_Atomic tell_fn)(int tag, uint64_t bytes, uint64_t ns);

void vp_pageout_init(void (*tell)(int tag, uint64_t bytes, uint64_t ns)) { atomic_store(&tell_fn, tell); }

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* madvise of the whole pages of r, told to tell when it worked. */
static void give_back(struct range r)
{
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE), a = (r.addr + ps - 1) & ~(ps - 1);
    uintptr_t b = (r.addr + r.len) & ~(ps - 1);
    if (b <= a) return;
    uint64_t t0 = now_ns();
    if (madvise((void *)a, b - a, MADV_PAGEOUT)) return; /* before Linux 5.4, or not allowed: the cache stays */
    void (*tell)(int, uint64_t, uint64_t) = atomic_load(&tell_fn);
    if (tell) tell(r.tag, b - a, now_ns() - t0);
}

static void *pageout_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&po.mu);
    for (;;) {
        while (!po.n) {
            po.busy = 0;
            pthread_cond_broadcast(&po.idle);
            pthread_cond_wait(&po.work, &po.mu);
        }
        struct range r = po.q[po.head];
        po.head = (po.head + 1) % QMAX;
        po.n--;
        po.busy = 1;
        pthread_mutex_unlock(&po.mu);
        give_back(r);
        pthread_mutex_lock(&po.mu);
    }
    return NULL;
}

/* Starts the thread once, every signal blocked in it from its first
 * instruction (mu held). */
static int start_locked(void)
{
    if (po.started) return po.started > 0 ? 0 : -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, NULL, pageout_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        po.started = -1;
        vp_warn("weights: cannot start the thread that gives file pages back; each copy gives its own back");
        return -1;
    }
    pthread_setname_np(t, "vpage-pageout");
    pthread_detach(t);
    po.started = 1;
    return 0;
}

/* The last range queued, when addr continues it (mu held). */
static struct range *tail_to_grow_locked(uintptr_t addr, int tag)
{
    if (!po.n) return NULL;
    struct range *t = &po.q[(po.head + po.n - 1) % QMAX];
    return t->tag == tag && t->addr + t->len == addr ? t : NULL;
}

void vp_pageout_queue(uintptr_t addr, size_t len, int tag)
{
    if (!len) return;
    pthread_mutex_lock(&po.mu);
    struct range *t = tail_to_grow_locked(addr, tag);
    int queued = t != NULL;
    if (t) t->len += len;
    else if (po.n < QMAX && start_locked() == 0) {
        po.q[(po.head + po.n) % QMAX] = (struct range){addr, len, tag};
        po.n++;
        queued = 1;
        pthread_cond_signal(&po.work);
    }
    pthread_mutex_unlock(&po.mu);
    if (!queued) give_back((struct range){addr, len, tag});
}

void vp_pageout_drain(void)
{
    pthread_mutex_lock(&po.mu);
    while (po.started > 0 && (po.n || po.busy)) pthread_cond_wait(&po.idle, &po.mu);
    pthread_mutex_unlock(&po.mu);
}

void vp_pageout_reset_child(void)
{
    pthread_mutex_init(&po.mu, NULL);
    pthread_cond_init(&po.work, NULL);
    pthread_cond_init(&po.idle, NULL);
    po.head = po.n = 0;
    po.busy = po.started = 0;
}
