/* apool.c - see apool.h. */
#include "apool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../books/ptrmap.h"
#include "../books/weights.h"
#include "../common/log.h"
#include "../common/vp.h"
#include "../driver/exec.h"
#include "../driver/query.h"
#include "pager.h"

#define NCLASS 12 /* VP_APOOL_MIN << 0 .. VP_APOOL_SMALL */
#define QUERY_MAX 4 /* blocks freed on other streams whose events one request asks about */

/* A block: in use (in the live map), free (in its list) or held. */
struct block {
    uint64_t ptr, size; /* size: rounded */
    struct seg *seg;    /* NULL: a paged allocation of its own */
    CUstream stream;    /* where it was freed */
    CUevent ev;         /* recorded there at the free; NULL: nothing to wait for */
    uint8_t per_thread; /* freed on a per-thread default stream */
    uint8_t listed;
    struct block *next, *prev;
};

struct seg {
    uint64_t base;
    uint32_t cls, nblk, used;
    struct seg *next;
    struct block blk[];
};

struct stats {
    uint64_t live, cached, backing, reused, made, trimmed, held;
    uint64_t live_high, backing_high; /* since the start or the program's last reset */
};

static struct dcache {
    struct block *small[NCLASS], *large, *held;
    struct seg *segs;
    CUevent *evs; /* events for reuse, made in this device's context */
    size_t nevs, evcap;
    struct stats st;
} dc[VP_MAX_DEVICES];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct vp_map live = VP_MAP_INIT; /* block ptr -> {bytes asked, aux: struct block *} */

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* Class and rounded size of a small request. */
static uint32_t class_of(uint64_t bytes, uint64_t *size)
{
    uint32_t c = 0;
    uint64_t s = VP_APOOL_MIN;
    while (s < bytes) {
        s <<= 1;
        c++;
    }
    *size = s;
    return c;
}

/* The stream a call means: the ptsz symbols' 0 is the calling thread's
 * default stream (*per_thread), the others' 0 the legacy one. */
static CUstream stream_of(CUstream stream, int ptsz, int *per_thread)
{
    *per_thread = stream == CU_STREAM_PER_THREAD || (ptsz && !stream);
    if (stream) return stream;
    return ptsz ? CU_STREAM_PER_THREAD : CU_STREAM_LEGACY;
}

/* bytes more of paged memory held by d's cache. */
static void backing_grew_locked(struct dcache *d, uint64_t bytes)
{
    d->st.backing += bytes;
    if (d->st.backing > d->st.backing_high) d->st.backing_high = d->st.backing;
}

static struct block **list_of(struct dcache *d, const struct block *b)
{
    return b->seg ? &d->small[b->seg->cls] : &d->large;
}

static void push_locked(struct block **head, struct block *b)
{
    b->prev = NULL;
    b->next = *head;
    if (*head) (*head)->prev = b;
    *head = b;
    b->listed = 1;
}

static void unlink_locked(struct block **head, struct block *b)
{
    if (b->prev) b->prev->next = b->next;
    else *head = b->next;
    if (b->next) b->next->prev = b->prev;
    b->next = b->prev = NULL;
    b->listed = 0;
}

static void event_put_locked(struct dcache *d, CUevent ev)
{
    if (!ev) return;
    if (d->nevs == d->evcap) {
        size_t cap = d->evcap ? d->evcap * 2 : 64;
        CUevent *n = realloc(d->evs, cap * sizeof *n);
        if (!n) return; /* the event leaks: the driver frees it with the context */
        d->evs = n;
        d->evcap = cap;
    }
    d->evs[d->nevs++] = ev;
}

/* Takes b out of its list for use; its event goes back to the device's. */
static void take_locked(struct dcache *d, struct block *b)
{
    unlink_locked(list_of(d, b), b);
    event_put_locked(d, b->ev);
    b->ev = NULL;
    d->st.cached -= b->size;
    if (b->seg) b->seg->used++;
}

/* Finds a free block of size in list that stream s may take without
 * waiting: one with no event, or freed on s itself. */
static struct block *ready_locked(struct block *list, uint64_t size, CUstream s, int pt)
{
    for (struct block *b = list; b; b = b->next)
        if (b->size == size && (!b->ev || (!pt && !b->per_thread && b->stream == s))) return b;
    return NULL;
}

/* A free block of size whose event (recorded on another stream) has
 * completed, asked of the driver outside the lock; NULL if none of the
 * first QUERY_MAX has. Called and returns with mu held; the block is taken. */
static struct block *completed_locked(struct dcache *d, struct block **list, uint64_t size)
{
    for (int tries = 0; tries < QUERY_MAX; tries++) {
        struct block *b = *list;
        while (b && (b->size != size || !b->ev)) b = b->next;
        if (!b) return NULL;
        /* out of its list, no other thread takes it meanwhile; its
         * segment counts it in use, so a trim does not give that back */
        unlink_locked(list, b);
        if (b->seg) b->seg->used++;
        CUevent ev = b->ev;
        pthread_mutex_unlock(&mu);
        CUresult q = vp_drv_query(ev);
        pthread_mutex_lock(&mu);
        if (b->seg) b->seg->used--;
        if (q == CUDA_SUCCESS) {
            push_locked(list, b);
            take_locked(d, b);
            return b;
        }
        /* still running: back at the end, so the next try sees another */
        struct block *t = *list;
        if (!t) {
            push_locked(list, b);
            return NULL;
        }
        while (t->next) t = t->next;
        t->next = b;
        b->prev = t;
        b->next = NULL;
        b->listed = 1;
    }
    return NULL;
}

/* A new paged allocation of bytes for the cache; on the paged limit, the
 * cache gives back what it can and tries once more (the first try is quiet:
 * only a refusal that stands is said). */
static CUresult backing(int dev, CUdeviceptr *p, uint64_t bytes)
{
    CUresult rc = vp_pager()->alloc(VP_HOOK_COUNT, p, bytes);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
        vp_apool_trim(dev);
        rc = vp_pager()->alloc(VP_HOOK_cuMemAllocAsync, p, bytes);
    }
    return rc;
}

static void release_backing(uint64_t ptr)
{
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    uint64_t n;
    if (!vp_pager_free(ptr, &rc, &n) || rc != CUDA_SUCCESS)
        vp_warn("async cache: giving back paged memory at %#llx failed (CUresult %d)", (unsigned long long)ptr,
                (int)rc);
}

static CUresult new_block(int dev, struct dcache *d, uint64_t size, uint32_t cls, int small, struct block **out)
{
    CUdeviceptr p = 0;
    uint64_t span = small ? VP_APOOL_SEGMENT : size;
    CUresult rc = backing(dev, &p, span);
    if (rc != CUDA_SUCCESS) return rc;
    if (!small) {
        struct block *b = calloc(1, sizeof *b);
        if (!b) {
            release_backing(p);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        b->ptr = p;
        b->size = size;
        pthread_mutex_lock(&mu);
        backing_grew_locked(d, span);
        pthread_mutex_unlock(&mu);
        *out = b;
        return CUDA_SUCCESS;
    }
    uint32_t n = (uint32_t)(VP_APOOL_SEGMENT / size);
    struct seg *s = calloc(1, sizeof *s + (size_t)n * sizeof(struct block));
    if (!s) {
        release_backing(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    s->base = p;
    s->cls = cls;
    s->nblk = n;
    s->used = 1;
    for (uint32_t i = 0; i < n; i++) {
        s->blk[i].ptr = p + (uint64_t)i * size;
        s->blk[i].size = size;
        s->blk[i].seg = s;
    }
    pthread_mutex_lock(&mu);
    s->next = d->segs;
    d->segs = s;
    backing_grew_locked(d, span);
    for (uint32_t i = n; i-- > 1;) push_locked(&d->small[cls], &s->blk[i]);
    d->st.cached += (uint64_t)(n - 1) * size;
    pthread_mutex_unlock(&mu);
    *out = &s->blk[0];
    return CUDA_SUCCESS;
}

CUresult vp_apool_alloc(int dev, CUdeviceptr *dptr, size_t bytes, CUstream stream, int ptsz)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES || !dptr) return CUDA_ERROR_NOT_SUPPORTED;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    int pt;
    CUstream s = stream_of(stream, ptsz, &pt);
    int small = bytes <= VP_APOOL_SMALL;
    uint64_t size;
    uint32_t cls = small ? class_of(bytes, &size) : 0;
    if (!small) size = round_up(bytes, VP_APOOL_SEGMENT);
    struct dcache *d = &dc[dev];
    struct block **list = small ? &d->small[cls] : &d->large;

    pthread_mutex_lock(&mu);
    struct block *b = ready_locked(*list, size, s, pt);
    if (b) take_locked(d, b);
    else b = completed_locked(d, list, size);
    if (b) d->st.reused++;
    pthread_mutex_unlock(&mu);
    if (!b) {
        CUresult rc = new_block(dev, d, size, cls, small, &b);
        if (rc != CUDA_SUCCESS) return rc;
        pthread_mutex_lock(&mu);
        d->st.made++;
        pthread_mutex_unlock(&mu);
    }
    if (vp_map_put(&live, b->ptr, (struct vp_rec){bytes, (uint64_t)(uintptr_t)b, (int16_t)dev, 0, 0})) {
        vp_error("async cache: out of host memory recording a block; it is not handed out");
        return CUDA_ERROR_OUT_OF_MEMORY; /* b stays out of every list: leaked */
    }
    pthread_mutex_lock(&mu);
    d->st.live += bytes;
    if (d->st.live > d->st.live_high) d->st.live_high = d->st.live;
    pthread_mutex_unlock(&mu);
    *dptr = b->ptr;
    return CUDA_SUCCESS;
}

/* An event of dev recorded on stream on, or NULL (the caller then waited
 * for the stream: the block needs no event). */
static CUevent record_on(int dev, CUstream on)
{
    CUevent ev = NULL;
    if (vp_drv_current_device() == dev) {
        pthread_mutex_lock(&mu);
        if (dc[dev].nevs) ev = dc[dev].evs[--dc[dev].nevs];
        pthread_mutex_unlock(&mu);
        if (!ev && vp_drv_event_new(&ev) != CUDA_SUCCESS) ev = NULL;
        if (ev && vp_drv_record(ev, on) == CUDA_SUCCESS) return ev;
    }
    if (ev) {
        pthread_mutex_lock(&mu);
        event_put_locked(&dc[dev], ev);
        pthread_mutex_unlock(&mu);
    }
    vp_drv_sync(on);
    return NULL;
}

int vp_apool_free(CUdeviceptr dptr, CUstream stream, int ptsz, uint64_t *bytes)
{
    if (!vp_map_size(&live)) return 0;
    struct vp_rec r;
    if (!vp_map_take(&live, dptr, &r)) return 0;
    struct block *b = (struct block *)(uintptr_t)r.aux;
    int dev = r.dev;
    struct dcache *d = &dc[dev];
    vp_weights_written(dptr, b->size); /* freed bytes are no one's copy */
    int pt, captured = vp_drv_capturing(stream, ptsz);
    CUstream s = stream_of(stream, ptsz, &pt);
    CUevent ev = captured ? NULL : record_on(dev, s);
    pthread_mutex_lock(&mu);
    d->st.live -= r.bytes;
    if (captured) {
        /* the capture's graph may use it whenever it is launched */
        push_locked(&d->held, b);
        d->st.held += b->size;
    } else {
        b->stream = s;
        b->per_thread = (uint8_t)pt;
        b->ev = ev;
        if (b->seg) b->seg->used--; /* a held block keeps its segment */
        push_locked(list_of(d, b), b);
        d->st.cached += b->size;
    }
    pthread_mutex_unlock(&mu);
    *bytes = r.bytes;
    return 1;
}

/* Moves every free block of list to *out (linked through next). */
static void detach_locked(struct block **list, struct block **out)
{
    while (*list) {
        struct block *b = *list;
        unlink_locked(list, b);
        b->next = *out;
        *out = b;
    }
}

void vp_apool_trim(int dev)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES) return;
    struct dcache *d = &dc[dev];
    struct block *got = NULL;
    pthread_mutex_lock(&mu);
    for (int c = 0; c < NCLASS; c++) detach_locked(&d->small[c], &got);
    detach_locked(&d->large, &got);
    pthread_mutex_unlock(&mu);
    if (!got) return;
    for (struct block *b = got; b; b = b->next)
        if (b->ev) vp_drv_wait(b->ev);

    struct block *gone = NULL; /* large blocks to give back */
    struct seg *dead = NULL;
    uint64_t trimmed = 0;
    pthread_mutex_lock(&mu);
    for (struct block *b = got, *next; b; b = next) {
        next = b->next;
        event_put_locked(d, b->ev);
        b->ev = NULL;
        d->st.cached -= b->size;
        if (!b->seg) {
            b->next = gone;
            gone = b;
        } else {
            push_locked(&d->small[b->seg->cls], b); /* free, usable anywhere */
            d->st.cached += b->size;
        }
    }
    for (struct seg **sp = &d->segs; *sp;) {
        struct seg *s = *sp;
        if (s->used) {
            sp = &s->next;
            continue;
        }
        *sp = s->next;
        for (uint32_t i = 0; i < s->nblk; i++) { /* all free, so all listed */
            unlink_locked(&d->small[s->cls], &s->blk[i]);
            event_put_locked(d, s->blk[i].ev); /* freed while the trim waited */
            d->st.cached -= s->blk[i].size;
        }
        s->next = dead;
        dead = s;
        d->st.backing -= VP_APOOL_SEGMENT;
        trimmed += VP_APOOL_SEGMENT;
    }
    for (struct block *b = gone; b; b = b->next) {
        d->st.backing -= b->size;
        trimmed += b->size;
    }
    d->st.trimmed += trimmed;
    pthread_mutex_unlock(&mu);

    for (struct block *b = gone, *next; b; b = next) {
        next = b->next;
        release_backing(b->ptr);
        free(b);
    }
    for (struct seg *s = dead, *next; s; s = next) {
        next = s->next;
        release_backing(s->base);
        free(s);
    }
    if (trimmed) vp_debug("async cache: gave back %llu bytes of device %d", (unsigned long long)trimmed, dev);
}

uint64_t vp_apool_bytes(int dev, int used, int high)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES) return 0;
    pthread_mutex_lock(&mu);
    const struct stats *st = &dc[dev].st;
    uint64_t v = used ? (high ? st->live_high : st->live) : (high ? st->backing_high : st->backing);
    pthread_mutex_unlock(&mu);
    return v;
}

void vp_apool_reset_high(int dev, int used)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES) return;
    pthread_mutex_lock(&mu);
    struct stats *st = &dc[dev].st;
    if (used) st->live_high = st->live;
    else st->backing_high = st->backing;
    pthread_mutex_unlock(&mu);
}

void vp_apool_report(int json, vp_emit_fn emit, void *ctx, int dev)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES) return;
    pthread_mutex_lock(&mu);
    struct stats st = dc[dev].st;
    pthread_mutex_unlock(&mu);
    if (!st.made) return;
    const char *f = json ? ",\"%s\":%llu" : ", %s %llu";
    emit(ctx, f, "async_live", (unsigned long long)st.live);
    emit(ctx, f, "async_cached", (unsigned long long)st.cached);
    emit(ctx, f, "async_backing", (unsigned long long)st.backing);
    emit(ctx, f, "async_made", (unsigned long long)st.made);
    emit(ctx, f, "async_reused", (unsigned long long)st.reused);
    emit(ctx, f, "async_trimmed", (unsigned long long)st.trimmed);
    emit(ctx, f, "async_held", (unsigned long long)st.held);
}

void vp_apool_lock(void)
{
    pthread_mutex_lock(&mu);
    pthread_mutex_lock(&live.lock);
}

void vp_apool_unlock(void)
{
    pthread_mutex_unlock(&live.lock);
    pthread_mutex_unlock(&mu);
}

/* The parent's blocks are not the child's (device memory is per process):
 * forget them (their records leak). */
void vp_apool_reset_child(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_mutex_init(&live.lock, NULL);
    memset(dc, 0, sizeof dc);
    vp_map_clear(&live);
}
