/* shared.c - see shared.h. */
#define _GNU_SOURCE
#include "shared.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include "../common/log.h"
#include "../common/options.h"
#include "../common/stats.h"
#include "../driver/exec.h"
#include "../books/account.h"

/* Index of the first range starting after a. */
static size_t upper(const struct vp_rangetab *t, uint64_t a)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->r[mid].base <= a) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void *vp_rangetab_find(const struct vp_rangetab *t, uint64_t a)
{
    size_t i = upper(t, a);
    if (!i) return NULL;
    const struct vp_range *r = &t->r[i - 1];
    return a - r->base < r->size ? r->owner : NULL;
}

int vp_rangetab_insert(struct vp_rangetab *t, uint64_t base, uint64_t size, void *owner)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        struct vp_range *nr = realloc(t->r, nc * sizeof *nr);
        if (!nr) return -1;
        t->r = nr;
        t->cap = nc;
    }
    size_t i = upper(t, base);
    memmove(&t->r[i + 1], &t->r[i], (t->n - i) * sizeof *t->r);
    t->r[i] = (struct vp_range){base, size, owner};
    t->n++;
    return 0;
}

void vp_rangetab_remove(struct vp_rangetab *t, uint64_t base)
{
    size_t i = upper(t, base);
    if (i && t->r[i - 1].base == base) {
        memmove(&t->r[i - 1], &t->r[i], (t->n - i) * sizeof *t->r);
        t->n--;
    }
}

void vp_rangetab_forget(struct vp_rangetab *t)
{
    t->r = NULL;
    t->n = t->cap = 0;
}

int vp_allocs_span(struct vp_allocs *s, uint64_t *lo, uint64_t *hi)
{
    if (!atomic_load_explicit(&s->n, memory_order_relaxed)) return 0;
    *lo = atomic_load_explicit(&s->lo, memory_order_relaxed);
    *hi = atomic_load_explicit(&s->hi, memory_order_relaxed);
    return 1;
}

int vp_allocs_owns(struct vp_allocs *s, pthread_mutex_t *mu, uint64_t a)
{
    if (!atomic_load_explicit(&s->n, memory_order_relaxed)) return 0;
    pthread_mutex_lock(mu);
    int r = vp_rangetab_find(&s->tab, a) != NULL;
    pthread_mutex_unlock(mu);
    return r;
}

int vp_allocs_insert_locked(struct vp_allocs *s, uint64_t base, uint64_t size, void *owner)
{
    if (vp_rangetab_insert(&s->tab, base, size, owner)) return -1;
    vp_gauge_move(&s->lo, base, 0);
    vp_gauge_move(&s->hi, base + size, 1);
    atomic_fetch_add(&s->n, 1);
    return 0;
}

void vp_allocs_remove_locked(struct vp_allocs *s, uint64_t base)
{
    vp_rangetab_remove(&s->tab, base);
    atomic_fetch_sub(&s->n, 1);
}

void vp_allocs_forget(struct vp_allocs *s)
{
    vp_rangetab_forget(&s->tab);
    atomic_store(&s->n, 0);
}

void vp_gauge_move(atomic_uint_fast64_t *g, uint64_t v, int up)
{
    uint64_t c = atomic_load(g);
    while ((up ? v > c : v < c) && !atomic_compare_exchange_weak(g, &c, v)) {}
}

uint64_t vp_paged_limit(void)
{
    if (vp_opt.paged_limit) return vp_opt.paged_limit;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : UINT64_MAX;
}

int vp_paged_take(atomic_uint_fast64_t *paged, uint64_t bytes, int dev, enum vp_hook_id hook,
                  atomic_uint_fast64_t *refused)
{
    static atomic_uint_fast64_t said;
    uint64_t limit = vp_paged_limit(), cur = atomic_load(paged);
    do {
        if (bytes > limit || cur > limit - bytes) {
            if (hook == VP_HOOK_COUNT) return -1;
            char a[32], b[32], c[32];
            atomic_fetch_add_explicit(refused, 1, memory_order_relaxed);
            vp_log_limited(VP_WARN, &said,
                           "%s of %s on device %d refused: %s of the %s paged limit (VPAGE_PAGED_LIMIT) already "
                           "allocated; returning CUDA_ERROR_OUT_OF_MEMORY",
                           vp_hook_name(hook), vp_fmt_bytes(bytes, a, sizeof a), dev, vp_fmt_bytes(cur, b, sizeof b),
                           vp_fmt_bytes(limit, c, sizeof c));
            return -1;
        }
    } while (!atomic_compare_exchange_weak(paged, &cur, cur + bytes));
    return 0;
}

void vp_report_begin(int json, vp_emit_fn emit, void *ctx, const char *mode)
{
    emit(ctx, json ? "{\"mode\":\"%s\",\"chunk\":%llu,\"devices\":[" : "paging: %s, chunk %llu bytes\n", mode,
         (unsigned long long)vp_opt.chunk);
}

void vp_report_device(int json, vp_emit_fn emit, void *ctx, int first, int dev)
{
    struct vp_gauge_view r = vp_acct_get(dev, VP_KIND_resident);
    emit(ctx, json ? "%s{\"device\":%d,\"resident\":%llu,\"resident_peak\":%llu"
                   : "%s  device %d: resident %llu, resident peak %llu",
         json ? (first ? "" : ",") : "", dev, (unsigned long long)r.cur, (unsigned long long)r.peak);
}

void vp_report_field(int json, vp_emit_fn emit, void *ctx, const char *name, uint64_t v)
{
    emit(ctx, json ? ",\"%s\":%llu" : ", %s %llu", name, (unsigned long long)v);
}

void vp_report_device_end(int json, vp_emit_fn emit, void *ctx) { emit(ctx, json ? "}" : "\n"); }

void vp_report_end(int json, vp_emit_fn emit, void *ctx) { emit(ctx, json ? "]}" : ""); }

void vp_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, long ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec += ns % 1000000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

int vp_pager_thread_start_locked(struct vp_pager_thread *t, void *(*fn)(void *), const char *name, const char *fail)
{
    if (t->started) return 0;
    if (pthread_create(&t->thread, NULL, fn, NULL)) {
        vp_error("%s", fail);
        return -1;
    }
    pthread_setname_np(t->thread, name);
    t->started = 1;
    return 0;
}

void vp_pager_thread_enter(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    vp_drv_capture_mode(&mode);
}

void vp_pager_thread_stop(struct vp_pager_thread *t)
{
    pthread_mutex_lock(&t->mu);
    int join = t->started && !t->stopping;
    t->stopping = 1;
    pthread_cond_broadcast(&t->work_cv);
    pthread_cond_broadcast(&t->done_cv);
    pthread_mutex_unlock(&t->mu);
    if (join) pthread_join(t->thread, NULL);
}

void vp_pager_thread_capture(struct vp_pager_thread *t, int delta)
{
    if (delta > 0) {
        atomic_fetch_add(&t->capturing, 1);
        return;
    }
    int c = atomic_load(&t->capturing);
    while (c > 0 && !atomic_compare_exchange_weak(&t->capturing, &c, c - 1)) {}
    if (c == 1) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_signal(&t->work_cv);
        pthread_mutex_unlock(&t->mu);
    }
}

struct vp_reclaim_req {
    int dev, kind, done, ok;
    uint64_t bytes;
    struct vp_reclaim_req *next;
};

int vp_pager_thread_reclaim(struct vp_pager_thread *t, int dev, int kind, uint64_t bytes)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES || atomic_load(&t->capturing)) return -1;
    if (!vp_acct_get(dev, VP_KIND_resident).cur) return -1;
    struct vp_reclaim_req r = {dev, kind, 0, 0, bytes, NULL};
    pthread_mutex_lock(&t->mu);
    if (!t->started || t->stopping) {
        pthread_mutex_unlock(&t->mu);
        return -1;
    }
    if (bytes > t->reclaim_want[dev]) t->reclaim_want[dev] = bytes;
    r.next = t->reqs;
    t->reqs = &r;
    pthread_cond_signal(&t->work_cv);
    while (!r.done && !t->stopping) pthread_cond_wait(&t->done_cv, &t->mu);
    if (!r.done) /* stopped: take the request back */
        for (struct vp_reclaim_req **pp = &t->reqs; *pp; pp = &(*pp)->next)
            if (*pp == &r) {
                *pp = r.next;
                break;
            }
    pthread_mutex_unlock(&t->mu);
    return r.ok ? 0 : -1;
}

int vp_pager_thread_reclaim_asked_locked(const struct vp_pager_thread *t)
{
    for (int d = 0; d < VP_MAX_DEVICES; d++)
        if (t->reclaim_want[d]) return 1;
    return 0;
}

void vp_pager_thread_reclaimed_locked(struct vp_pager_thread *t)
{
    /* a caller that asked during the pass (its device asks again) and did
     * not get its room waits for the next pass */
    for (struct vp_reclaim_req **pp = &t->reqs; *pp;) {
        struct vp_reclaim_req *r = *pp;
        r->ok = vp_acct_reserve(r->dev, (enum vp_kind)r->kind, r->bytes) == 0;
        if (!r->ok && t->reclaim_want[r->dev]) {
            pp = &r->next;
            continue;
        }
        r->done = 1;
        *pp = r->next;
    }
    pthread_cond_broadcast(&t->done_cv);
}

void vp_pager_thread_reset_child(struct vp_pager_thread *t)
{
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->work_cv, NULL);
    pthread_cond_init(&t->done_cv, NULL);
    t->started = t->stopping = 0;
    memset(t->reclaim_want, 0, sizeof t->reclaim_want);
    t->reqs = NULL; /* the parent's waiting callers are not in this process */
    atomic_store(&t->capturing, 0);
}
