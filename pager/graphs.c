/* graphs.c - see graphs.h. */
#include "graphs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>


/* A set of addresses, shared by a graph and the executable graphs made of
 * it; freed with its last reference. */
struct gset {
    atomic_int refs;
    size_t n;
    uint64_t v[];
};

/* handle -> set; one table for graphs, one for executable graphs */
struct gtab {
    struct {
        uintptr_t h;
        struct gset *s;
    } e[VP_GRAPHS_MAX];
    size_t n;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct gtab graphs, execs;
static atomic_uint_fast64_t replays_known, captured;

/* the calling thread's capture: its depth and the addresses gathered */
static __thread struct {
    int depth;
    uint64_t *v;
    size_t n, cap;
} cap;

static void unref(struct gset *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) free(s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The thread's gathered addresses as a set (NULL when none or out of
 * memory); the gathering starts over. */
static struct gset *take_capture(void)
{
    struct gset *s = NULL;
    if (cap.n) {
        qsort(cap.v, cap.n, sizeof *cap.v, cmp_u64);
        size_t u = 0;
        for (size_t i = 0; i < cap.n; i++)
            if (!u || cap.v[u - 1] != cap.v[i]) cap.v[u++] = cap.v[i];
        s = malloc(sizeof *s + u * sizeof *s->v);
        if (s) {
            atomic_init(&s->refs, 1);
            s->n = u;
            memcpy(s->v, cap.v, u * sizeof *s->v);
        }
    }
    free(cap.v);
    cap.v = NULL;
    cap.n = cap.cap = 0;
    return s;
}

/* ---- the tables (mu held) ---- */

static size_t find(const struct gtab *t, uintptr_t h)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].h == h) return i;
    return t->n;
}

static void drop_at(struct gtab *t, size_t i)
{
    unref(t->e[i].s);
    memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof t->e[0]);
    t->n--;
}

/* Sets h's set to s (a reference the table takes over; NULL: none). */
static void put(struct gtab *t, uintptr_t h, struct gset *s)
{
    size_t i = find(t, h);
    if (i < t->n) drop_at(t, i);
    if (!s) return;
    if (t->n == VP_GRAPHS_MAX) drop_at(t, 0); /* the oldest */
    t->e[t->n].h = h;
    t->e[t->n++].s = s;
}

/* ---- entry points ---- */

void vp_graphs_capture(int delta, CUgraph graph)
{
    if (delta > 0) {
        cap.depth++;
        return;
    }
    if (cap.depth <= 0) return; /* begun on another thread */
    if (--cap.depth > 0) return;
    struct gset *s = take_capture();
    if (!graph) {
        unref(s);
        return;
    }
    if (s) atomic_fetch_add(&captured, 1);
    pthread_mutex_lock(&mu);
    put(&graphs, (uintptr_t)graph, s);
    pthread_mutex_unlock(&mu);
}

int vp_graphs_capturing(void) { return cap.depth > 0; }

void vp_graphs_note(const uint64_t *ptrs, size_t n, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < n && cap.n < VP_GRAPHS_ADDRS; i++) {
        if (ptrs[i] < lo || ptrs[i] >= hi) continue;
        if (cap.n == cap.cap) {
            size_t c = cap.cap ? 2 * cap.cap : 256;
            uint64_t *v = realloc(cap.v, c * sizeof *v);
            if (!v) return;
            cap.v = v;
            cap.cap = c;
        }
        cap.v[cap.n++] = ptrs[i];
    }
}

void vp_graphs_instantiated(CUgraph graph, CUgraphExec exec)
{
    pthread_mutex_lock(&mu);
    size_t i = find(&graphs, (uintptr_t)graph);
    struct gset *s = i < graphs.n ? graphs.e[i].s : NULL;
    if (s) atomic_fetch_add(&s->refs, 1);
    put(&execs, (uintptr_t)exec, s);
    pthread_mutex_unlock(&mu);
}

void vp_graphs_forget(CUgraph graph, CUgraphExec exec)
{
    pthread_mutex_lock(&mu);
    if (graph) put(&graphs, (uintptr_t)graph, NULL);
    if (exec) put(&execs, (uintptr_t)exec, NULL);
    pthread_mutex_unlock(&mu);
}

const uint64_t *vp_graphs_take(CUgraphExec exec, size_t *n, void **ref)
{
    pthread_mutex_lock(&mu);
    size_t i = find(&execs, (uintptr_t)exec);
    struct gset *s = i < execs.n ? execs.e[i].s : NULL;
    if (s) atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&mu);
    *ref = s;
    *n = s ? s->n : 0;
    if (s) atomic_fetch_add(&replays_known, 1);
    return s ? s->v : NULL;
}

void vp_graphs_release(void *ref) { unref(ref); }

uint64_t vp_graphs_replays_known(void) { return atomic_load(&replays_known); }
uint64_t vp_graphs_captured(void) { return atomic_load(&captured); }

void vp_graphs_reset_child(void)
{
    pthread_mutex_init(&mu, NULL);
    graphs.n = execs.n = 0; /* the sets are the parent's: left, not freed */
    cap.depth = 0;
    cap.v = NULL;
    cap.n = cap.cap = 0;
}
