/* ranges.c - the program's address ranges of streamed allocations.
 *
 * Carved first-fit out of large reservations ("arenas"), so allocations
 * made one after another (a model's weights) are neighbours, and pieces of
 * neighbouring allocations moving together are unmapped with one call.
 * Holes merge only within one arena: a mapping may not span two.
 */
#include <stdlib.h>
#include <string.h>

#include "../../driver/vmm.h"
#include "internal.h"

#define ARENA_BYTES (64ull << 30)
#define MAX_ARENAS 64

static int hole_insert_locked(CUdeviceptr start, uint64_t len, int arena)
{
    size_t i = 0;
    while (i < sp.nholes && sp.holes[i].start < start) i++;
    int left = i > 0 && sp.holes[i - 1].arena == arena && sp.holes[i - 1].start + sp.holes[i - 1].len == start;
    int right = i < sp.nholes && sp.holes[i].arena == arena && start + len == sp.holes[i].start;
    if (left && right) {
        sp.holes[i - 1].len += len + sp.holes[i].len;
        memmove(&sp.holes[i], &sp.holes[i + 1], (sp.nholes - i - 1) * sizeof *sp.holes);
        sp.nholes--;
        return 0;
    }
    if (left) {
        sp.holes[i - 1].len += len;
        return 0;
    }
    if (right) {
        sp.holes[i].start = start;
        sp.holes[i].len += len;
        return 0;
    }
    if (sp.nholes == sp.capholes) {
        size_t nc = sp.capholes ? sp.capholes * 2 : 64;
        struct hole *nh = realloc(sp.holes, nc * sizeof *nh);
        if (!nh) return -1;
        sp.holes = nh;
        sp.capholes = nc;
    }
    memmove(&sp.holes[i + 1], &sp.holes[i], (sp.nholes - i) * sizeof *sp.holes);
    sp.holes[i] = (struct hole){start, len, arena};
    sp.nholes++;
    return 0;
}

/* A range of span bytes (a multiple of g), or 0 (reported) if none. */
CUdeviceptr range_take(uint64_t span, uint64_t g, int *arena)
{
    for (int tries = 0; tries < 2; tries++) {
        pthread_mutex_lock(&sp.pt.mu);
        for (size_t i = 0; i < sp.nholes; i++)
            if (sp.holes[i].len >= span) {
                CUdeviceptr p = sp.holes[i].start;
                *arena = sp.holes[i].arena;
                sp.holes[i].start += span;
                sp.holes[i].len -= span;
                if (!sp.holes[i].len) {
                    memmove(&sp.holes[i], &sp.holes[i + 1], (sp.nholes - i - 1) * sizeof *sp.holes);
                    sp.nholes--;
                }
                pthread_mutex_unlock(&sp.pt.mu);
                return p;
            }
        int id = sp.narenas;
        pthread_mutex_unlock(&sp.pt.mu);
        if (id >= MAX_ARENAS) break;
        uint64_t len = span > ARENA_BYTES ? round_up(span, g) : ARENA_BYTES;
        CUdeviceptr base = 0;
        if (vp_drv_reserve(&base, len, g) != CUDA_SUCCESS) {
            len = span; /* no room for an arena: one of its own */
            if (vp_drv_reserve(&base, len, g) != CUDA_SUCCESS) break;
        }
        pthread_mutex_lock(&sp.pt.mu);
        id = sp.narenas++;
        int bad = hole_insert_locked(base, len, id);
        pthread_mutex_unlock(&sp.pt.mu);
        if (bad) break;
    }
    return 0;
}

void range_give(CUdeviceptr start, uint64_t span, int arena)
{
    pthread_mutex_lock(&sp.pt.mu);
    hole_insert_locked(start, span, arena); /* out of memory: the range is lost, not reused */
    pthread_mutex_unlock(&sp.pt.mu);
}
