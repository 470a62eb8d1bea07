/* slots.c - device memory of one piece's size: made under the cap,
 * reused from a free list per device, given back.
 *
 * A slot's bytes count as kind "resident" from before its cuMemCreate until
 * after its release, so the books never show less than the device holds.
 */
#include <stdlib.h>

#include "../../books/account.h"
#include "../../driver/vmm.h"
#include "internal.h"

/* Gives a slot's device memory back, and its bytes to the cap (mu not held). */
static void slot_destroy(int dev, struct slot *s)
{
    vp_drv_unmap(s->va, s->bytes);
    vp_drv_unreserve(s->va, s->bytes);
    vp_drv_release(s->h);
    uncount(&sp.ss[dev].slot_bytes, s->bytes); /* made <= resident at every instant */
    vp_acct_release(dev, VP_KIND_resident, s->bytes);
    free(s);
}

/* Puts a slot on dev's free list, for the next piece of its size (mu held). */
void slot_put_locked(int dev, struct slot *s)
{
    s->next = sp.free_slots[dev];
    sp.free_slots[dev] = s;
}

/* slot_put_locked, taking mu. */
void give_slot(int dev, struct slot *s)
{
    pthread_mutex_lock(&sp.pt.mu);
    slot_put_locked(dev, s);
    pthread_mutex_unlock(&sp.pt.mu);
}

/* A slot of bytes on dev: a free one of that size, or a new one (its bytes
 * reserved under the cap first; free slots of other sizes are released
 * for room). Pager thread, mu not held. NULL when there is no room. */
struct slot *slot_get(int dev, uint64_t bytes)
{
    pthread_mutex_lock(&sp.pt.mu);
    for (struct slot **pp = &sp.free_slots[dev]; *pp; pp = &(*pp)->next)
        if ((*pp)->bytes == bytes) {
            struct slot *s = *pp;
            *pp = s->next;
            pthread_mutex_unlock(&sp.pt.mu);
            return s;
        }
    pthread_mutex_unlock(&sp.pt.mu);
    while (vp_acct_reserve(dev, VP_KIND_resident, bytes)) {
        pthread_mutex_lock(&sp.pt.mu);
        struct slot *s = sp.free_slots[dev];
        if (s) sp.free_slots[dev] = s->next;
        pthread_mutex_unlock(&sp.pt.mu);
        if (!s) return NULL;
        slot_destroy(dev, s);
    }
    struct slot *s = calloc(1, sizeof *s);
    CUresult rc = s ? vp_drv_create_on(&s->h, bytes, dev, 0) : CUDA_ERROR_OUT_OF_MEMORY;
    if (rc == CUDA_SUCCESS) {
        rc = vp_drv_reserve(&s->va, bytes, 0);
        if (rc == CUDA_SUCCESS && (rc = vp_drv_map_for(s->va, bytes, s->h, dev)) != CUDA_SUCCESS)
            vp_drv_unreserve(s->va, bytes);
        if (rc != CUDA_SUCCESS) vp_drv_release(s->h);
    }
    if (rc != CUDA_SUCCESS) {
        if (s) driver_error("creating device memory for a piece", rc, dev);
        free(s);
        vp_acct_release(dev, VP_KIND_resident, bytes);
        return NULL;
    }
    s->bytes = bytes;
    count(&sp.ss[dev].slot_bytes, bytes);
    return s;
}

/* Releases every free slot of dev (mu not held). */
void release_free_slots(int dev)
{
    pthread_mutex_lock(&sp.pt.mu);
    struct slot *s = sp.free_slots[dev];
    sp.free_slots[dev] = NULL;
    pthread_mutex_unlock(&sp.pt.mu);
    while (s) {
        struct slot *next = s->next;
        slot_destroy(dev, s);
        s = next;
    }
}

