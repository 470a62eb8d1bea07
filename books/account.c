/* account.c - see account.h. */
#include "account.h"

#include <stdatomic.h>

#include "../common/log.h"
#include "../common/options.h"

struct gauge {
    atomic_uint_fast64_t cur, peak;
};

struct dev_books {
    struct gauge total;
    struct gauge kind[VP_KIND_COUNT];
};

static struct dev_books books[VP_MAX_DEVICES];
static atomic_int max_dev = -1;
static atomic_uint_fast64_t underflows;

static void raise_peak(struct gauge *g, uint64_t v)
{
    uint64_t p = atomic_load_explicit(&g->peak, memory_order_relaxed);
    while (v > p && !atomic_compare_exchange_weak(&g->peak, &p, v)) {}
}

static void note_device(int dev)
{
    int m = atomic_load_explicit(&max_dev, memory_order_relaxed);
    while (dev > m && !atomic_compare_exchange_weak(&max_dev, &m, dev)) {}
}

static void add(struct gauge *g, uint64_t bytes)
{
    raise_peak(g, atomic_fetch_add(&g->cur, bytes) + bytes);
}

static void sub(struct gauge *g, uint64_t bytes, const char *what)
{
    uint64_t c = atomic_load(&g->cur);
    for (;;) {
        uint64_t n = c >= bytes ? c - bytes : 0;
        if (atomic_compare_exchange_weak(&g->cur, &c, n)) break;
    }
    if (c < bytes)
        vp_log_limited(VP_ERROR, &underflows, "accounting bug: releasing %llu bytes of %s holding %llu",
                       (unsigned long long)bytes, what, (unsigned long long)c);
}

int vp_acct_reserve(int dev, enum vp_kind kind, uint64_t bytes)
{
    struct dev_books *b = &books[dev];
    uint64_t cap = vp_cap_of(dev);
    uint64_t cur = atomic_load(&b->total.cur);
    do {
        if (bytes > cap || cur > cap - bytes) return -1;
    } while (!atomic_compare_exchange_weak(&b->total.cur, &cur, cur + bytes));
    raise_peak(&b->total, cur + bytes);
    add(&b->kind[kind], bytes);
    note_device(dev);
    return 0;
}

void vp_acct_force(int dev, enum vp_kind kind, uint64_t bytes)
{
    add(&books[dev].total, bytes);
    add(&books[dev].kind[kind], bytes);
    note_device(dev);
}

void vp_acct_release(int dev, enum vp_kind kind, uint64_t bytes)
{
    sub(&books[dev].kind[kind], bytes, vp_kind_name(kind));
    sub(&books[dev].total, bytes, "the device total");
}

struct vp_gauge_view vp_acct_get(int dev, enum vp_kind kind)
{
    struct gauge *g = kind == VP_KIND_COUNT ? &books[dev].total : &books[dev].kind[kind];
    return (struct vp_gauge_view){atomic_load(&g->cur), atomic_load(&g->peak)};
}

uint64_t vp_acct_room(int dev)
{
    uint64_t cap = vp_cap_of(dev), total = atomic_load(&books[dev].total.cur);
    if (cap == VP_NO_CAP) return VP_NO_CAP;
    return cap > total ? cap - total : 0;
}

uint64_t vp_acct_budget(int dev)
{
    uint64_t cap = vp_cap_of(dev);
    if (cap == VP_NO_CAP) return VP_NO_CAP;
    uint64_t other = atomic_load(&books[dev].total.cur) - atomic_load(&books[dev].kind[VP_KIND_resident].cur);
    return cap > other ? cap - other : 0;
}

int vp_acct_max_device(void) { return atomic_load(&max_dev); }

const char *vp_kind_name(enum vp_kind kind)
{
    static const char *names[] = {
#define VP_X(kind, desc) #kind,
        VP_MEM_KINDS(VP_X)
#undef VP_X
    };
    return kind < VP_KIND_COUNT ? names[kind] : "total";
}

const char *vp_kind_desc(enum vp_kind kind)
{
    static const char *descs[] = {
#define VP_X(kind, desc) desc,
        VP_MEM_KINDS(VP_X)
#undef VP_X
    };
    return kind < VP_KIND_COUNT ? descs[kind] : "all counted bytes";
}

void vp_acct_reset(void)
{
    for (int d = 0; d < VP_MAX_DEVICES; d++) {
        atomic_store(&books[d].total.cur, 0);
        atomic_store(&books[d].total.peak, 0);
        for (int k = 0; k < VP_KIND_COUNT; k++) {
            atomic_store(&books[d].kind[k].cur, 0);
            atomic_store(&books[d].kind[k].peak, 0);
        }
    }
    atomic_store(&max_dev, -1);
}
