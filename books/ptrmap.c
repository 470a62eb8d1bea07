/* ptrmap.c - open addressing, linear probing, backward-shift deletion. */
#include "ptrmap.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static int grow(struct vp_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    struct vp_map_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key) continue;
        size_t j = slot_of(m->slots[i].key, ncap);
        while (ns[j].key) j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

/* key 0 marks an empty slot: it is never a key (freeing NULL is legal and
 * must find nothing) */
static struct vp_map_slot *find(struct vp_map *m, uint64_t key)
{
    if (!m->cap || !key) return NULL;
    for (size_t j = slot_of(key, m->cap);; j = (j + 1) & (m->cap - 1)) {
        if (m->slots[j].key == key) return &m->slots[j];
        if (!m->slots[j].key) return NULL;
    }
}

int vp_map_put(struct vp_map *m, uint64_t key, struct vp_rec rec)
{
    return vp_map_swap(m, key, rec, NULL) < 0 ? -1 : 0;
}

int vp_map_swap(struct vp_map *m, uint64_t key, struct vp_rec rec, struct vp_rec *old)
{
    if (!key) return -1;
    pthread_mutex_lock(&m->lock);
    struct vp_map_slot *s = find(m, key);
    if (s) {
        if (old) *old = s->rec;
        s->rec = rec;
        pthread_mutex_unlock(&m->lock);
        return 1;
    }
    if ((m->used + 1) * 10 > m->cap * 7 && grow(m)) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    size_t j = slot_of(key, m->cap);
    while (m->slots[j].key) j = (j + 1) & (m->cap - 1);
    m->slots[j].key = key;
    m->slots[j].rec = rec;
    m->used++;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int vp_map_take(struct vp_map *m, uint64_t key, struct vp_rec *out)
{
    pthread_mutex_lock(&m->lock);
    struct vp_map_slot *s = find(m, key);
    if (!s) {
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    if (out) *out = s->rec;
    /* backward-shift: pull later members of the probe run into the hole */
    size_t hole = (size_t)(s - m->slots), mask = m->cap - 1;
    for (size_t j = (hole + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = slot_of(m->slots[j].key, m->cap);
        /* move j into hole if home is not in (hole, j] cyclically */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->used--;
    pthread_mutex_unlock(&m->lock);
    return 1;
}

int vp_map_get(struct vp_map *m, uint64_t key, struct vp_rec *out)
{
    pthread_mutex_lock(&m->lock);
    struct vp_map_slot *s = find(m, key);
    if (s && out) *out = s->rec;
    pthread_mutex_unlock(&m->lock);
    return s != NULL;
}

void vp_map_each(struct vp_map *m, void (*fn)(uint64_t, struct vp_rec *, void *), void *arg)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) fn(m->slots[i].key, &m->slots[i].rec, arg);
    pthread_mutex_unlock(&m->lock);
}

size_t vp_map_size(struct vp_map *m)
{
    pthread_mutex_lock(&m->lock);
    size_t n = m->used;
    pthread_mutex_unlock(&m->lock);
    return n;
}

void vp_map_clear(struct vp_map *m)
{
    pthread_mutex_init(&m->lock, NULL);
    if (m->slots) memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->used = 0;
}
