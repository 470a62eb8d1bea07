/* registry.c - see registry.h. */
#define _GNU_SOURCE
#include "registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../driver/query.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct vp_kernel **table;
static size_t cap, used;

static _Thread_local struct vp_kernel *last;

static size_t slot_of(const void *h, size_t n)
{
    uint64_t k = (uint64_t)(uintptr_t)h;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & (n - 1);
}

static struct vp_kernel *find_locked(const void *h)
{
    if (!cap) return NULL;
    for (size_t j = slot_of(h, cap);; j = (j + 1) & (cap - 1)) {
        if (!table[j]) return NULL;
        if (table[j]->handle == h) return table[j];
    }
}

static int grow_locked(void)
{
    size_t ncap = cap ? cap * 2 : 4096;
    struct vp_kernel **nt = calloc(ncap, sizeof *nt);
    if (!nt) return -1;
    for (size_t i = 0; i < cap; i++) {
        if (!table[i]) continue;
        size_t j = slot_of(table[i]->handle, ncap);
        while (nt[j]) j = (j + 1) & (ncap - 1);
        nt[j] = table[i];
    }
    free(table);
    table = nt;
    cap = ncap;
    return 0;
}

struct vp_kernel *vp_registry_add(const void *handle, enum vp_handle_kind kind, const char *name)
{
    struct vp_kernel *k = vp_registry_find(handle);
    if (k) {
        if (kind != VP_HANDLE_UNKNOWN) k->kind = kind;
        return k;
    }
    struct vp_kernel *nk = calloc(1, sizeof *nk);
    if (!nk) return NULL;
    nk->handle = handle;
    nk->kind = kind;
    if (name) snprintf(nk->name, sizeof nk->name, "%s", name);
    else snprintf(nk->name, sizeof nk->name, "%s", vp_drv_kernel_name(handle, kind == VP_HANDLE_FUNCTION)); /* no lock */
    pthread_mutex_lock(&mu);
    k = find_locked(handle);
    if (!k && (used + 1) * 10 > cap * 7 && grow_locked()) {
        pthread_mutex_unlock(&mu);
        free(nk);
        return NULL;
    }
    if (!k) {
        size_t j = slot_of(handle, cap);
        while (table[j]) j = (j + 1) & (cap - 1);
        table[j] = k = nk;
        used++;
        nk = NULL;
    }
    pthread_mutex_unlock(&mu);
    free(nk);
    return k;
}

struct vp_kernel *vp_registry_find(const void *handle)
{
    pthread_mutex_lock(&mu);
    struct vp_kernel *k = find_locked(handle);
    pthread_mutex_unlock(&mu);
    return k;
}

static void read_layout(struct vp_kernel *k)
{
    uint32_t off[VP_MAX_PARAMS], size[VP_MAX_PARAMS];
    int n = 0;
    for (; n < VP_MAX_PARAMS; n++) {
        size_t o, s;
        if (vp_drv_param_info(k->handle, k->kind == VP_HANDLE_FUNCTION, (size_t)n, &o, &s)) break;
        off[n] = (uint32_t)o;
        size[n] = (uint32_t)s;
    }
    if (n > 0) {
        k->param_off = malloc((size_t)n * sizeof *off);
        k->param_size = malloc((size_t)n * sizeof *size);
        if (!k->param_off || !k->param_size) {
            free(k->param_off);
            free(k->param_size);
            k->param_off = k->param_size = NULL;
            atomic_store(&k->layout, VP_LAYOUT_NONE);
            return;
        }
        memcpy(k->param_off, off, (size_t)n * sizeof *off);
        memcpy(k->param_size, size, (size_t)n * sizeof *size);
    }
    k->nparams = n;
    /* A kernel with no parameters and one the driver cannot describe both
     * answer nothing at index 0; both have no pointers to follow. */
    atomic_store(&k->layout, VP_LAYOUT_KNOWN);
}

struct vp_kernel *vp_registry_launch(const void *handle)
{
    struct vp_kernel *k = last;
    if (!k || k->handle != handle) {
        k = vp_registry_find(handle);
        if (!k) k = vp_registry_add(handle, VP_HANDLE_UNKNOWN, NULL);
        if (!k) return NULL;
        last = k;
    }
    atomic_fetch_add_explicit(&k->launches, 1, memory_order_relaxed);
    int st = VP_LAYOUT_UNKNOWN;
    if (atomic_load_explicit(&k->layout, memory_order_relaxed) == VP_LAYOUT_UNKNOWN &&
        atomic_compare_exchange_strong(&k->layout, &st, VP_LAYOUT_READING))
        read_layout(k);
    return k;
}

void vp_registry_each(void (*fn)(struct vp_kernel *, void *), void *arg)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < cap; i++)
        if (table[i]) fn(table[i], arg);
    pthread_mutex_unlock(&mu);
}


/* ---- tensor maps ---- */

static pthread_mutex_t tmap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint64_t key, addr;
    unsigned char bytes[128];
} tmaps[VP_TMAPS];

static uint64_t tmap_key(const void *map)
{
    const unsigned char *b = map;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (int i = 0; i < 128; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h ? h : 1;
}

void vp_registry_tmap_add(const void *map, uint64_t addr)
{
    if (!map) return;
    uint64_t k = tmap_key(map);
    pthread_mutex_lock(&tmap_mu);
    size_t i = k % VP_TMAPS;
    tmaps[i].key = k;
    tmaps[i].addr = addr;
    memcpy(tmaps[i].bytes, map, 128);
    pthread_mutex_unlock(&tmap_mu);
}

/* Fork: the registry mutex, then the tensor maps' (init.c's lock order). */
void vp_registry_lock(void)
{
    pthread_mutex_lock(&mu);
    pthread_mutex_lock(&tmap_mu);
}

void vp_registry_unlock(void)
{
    pthread_mutex_unlock(&tmap_mu);
    pthread_mutex_unlock(&mu);
}

uint64_t vp_registry_tmap_addr(const void *map)
{
    uint64_t k = tmap_key(map), a = 0;
    pthread_mutex_lock(&tmap_mu);
    size_t i = k % VP_TMAPS;
    if (tmaps[i].key == k && !memcmp(tmaps[i].bytes, map, 128)) a = tmaps[i].addr;
    pthread_mutex_unlock(&tmap_mu);
    return a;
}
