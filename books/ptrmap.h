/* ptrmap.h - what vpage counted for each live allocation.
 *
 * Contract
 *   A map from a 64-bit key (device pointer, VMM handle, array or pool
 *   handle; never 0) to a record. Owns its storage (malloc). Each map has its
 *   own mutex, held only inside these calls, never across a driver call.
 *   The shims take a record out *before* freeing in the driver and put it
 *   back if the driver refuses: between a driver free and the removal,
 *   another thread may be handed the same address.
 */
#ifndef VPAGE_PAGER_PTRMAP_H
#define VPAGE_PAGER_PTRMAP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct vp_rec {
    uint64_t bytes;
    uint64_t aux;  /* pools: the most a growth overshot its request */
    int16_t dev;
    uint8_t kind;  /* enum vp_kind */
    uint16_t hook; /* enum vp_hook_id that made it */
};

struct vp_map_slot {
    uint64_t key;
    struct vp_rec rec;
};

struct vp_map {
    pthread_mutex_t lock;
    struct vp_map_slot *slots;
    size_t cap, used;
};

#define VP_MAP_INIT {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0}

/* Inserts or replaces. Returns 0, or -1 when out of host memory. */
int vp_map_put(struct vp_map *m, uint64_t key, struct vp_rec rec);
/* Stores rec under key and returns the record it replaced in *old: 1 if
 * there was one, 0 if key was new, -1 when out of host memory. */
int vp_map_swap(struct vp_map *m, uint64_t key, struct vp_rec rec, struct vp_rec *old);
/* Removes key into *out. Returns 1 if it was there, 0 if not. */
int vp_map_take(struct vp_map *m, uint64_t key, struct vp_rec *out);
/* Copies key's record into *out without removing it. Returns 1 or 0. */
int vp_map_get(struct vp_map *m, uint64_t key, struct vp_rec *out);
/* Calls fn for each entry, under the map's lock: fn must not call into the
 * driver or the map. */
void vp_map_each(struct vp_map *m, void (*fn)(uint64_t key, struct vp_rec *rec, void *arg), void *arg);
size_t vp_map_size(struct vp_map *m);
/* Empties the map (its lock must not be held). */
void vp_map_clear(struct vp_map *m);

#endif
