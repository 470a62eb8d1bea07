/* record.c - see record.h. */
#define _GNU_SOURCE
#include "record.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../books/table.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/options.h"
#include "../driver/cupti.h"
#include "../policy/plan.h"

struct rec {
    uint64_t seq;           /* its number among the launches recorded, from 1 */
    uint64_t dur_ns;        /* its kernel's time on the device (CUPTI), 0: not known */
    uint64_t id;            /* the launch's identity: its kernel's name and pieces */
    uint64_t kid;           /* its kernel's: the name alone */
    const char *kernel;     /* the registry's name: lives as long as the process */
    uint64_t other;
    uint8_t n;
    struct vp_record_span s[VP_RECORD_SPANS];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct rec *ring;    /* VP_RECORD_OPS, made at the first launch */
static uint64_t launches;   /* recorded, in all */
static int dev_kept = -1;
static struct { uint64_t bytes, piece, made; } *allocs; /* made: launches recorded before it */
static size_t nallocs, capallocs;

int vp_record_on(void) { return vp_opt.table[0] != 0; }

void vp_record_alloc(uint32_t order, uint64_t bytes, uint64_t piece)
{
    pthread_mutex_lock(&mu);
    if (order >= capallocs) {
        size_t nc = capallocs ? capallocs * 2 : 1024;
        while (nc <= order) nc *= 2;
        void *p = realloc(allocs, nc * sizeof *allocs);
        if (p) {
            allocs = p;
            capallocs = nc;
        }
    }
    if (order < capallocs) {
        allocs[order].bytes = bytes;
        allocs[order].piece = piece;
        allocs[order].made = launches;
        if (order >= nallocs) nallocs = order + 1u;
    }
    pthread_mutex_unlock(&mu);
}

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ull; }

uint64_t vp_record_id(const char *kernel, const struct vp_record_span *s, size_t n, uint64_t *kid)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t len = 0;
    for (const char *c = kernel; *c && len < VP_TABLE_NAME - 1; c++, len++)
        h = mix(h, vp_table_name_byte((unsigned char)*c) ? (unsigned char)*c : (unsigned char)'_');
    if (!len) h = mix(h, '?');
    *kid = h;
    for (size_t j = 0; j < n && j < VP_RECORD_SPANS; j++) h = mix(mix(mix(h, s[j].alloc), s[j].first), s[j].last);
    return h;
}

/* A kernel's time from CUPTI, for launch seq (driver/cupti.h's sink). */
static void timed(uint64_t seq, uint64_t dur_ns)
{
    pthread_mutex_lock(&mu);
    if (ring && seq && ring[(seq - 1) % VP_RECORD_OPS].seq == seq) ring[(seq - 1) % VP_RECORD_OPS].dur_ns = dur_ns;
    pthread_mutex_unlock(&mu);
}

static pthread_once_t cupti_once = PTHREAD_ONCE_INIT;

static void start_cupti(void) { vp_cupti_start(timed, vp_opt.cupti == VP_CUPTI_ON); }

void vp_record_start(void)
{
    if (vp_record_on() && vp_opt.cupti != VP_CUPTI_OFF) pthread_once(&cupti_once, start_cupti);
}

uint64_t vp_record_launch(const char *kernel, uint64_t id, uint64_t kid, int dev, const struct vp_record_span *s,
                          size_t n, uint64_t other)
{
    uint64_t seq = 0;
    pthread_mutex_lock(&mu);
    if (dev_kept < 0) dev_kept = dev;
    if (!ring) ring = calloc(VP_RECORD_OPS, sizeof *ring);
    if (ring && dev == dev_kept) {
        seq = ++launches;
        struct rec *r = &ring[(seq - 1) % VP_RECORD_OPS];
        r->seq = seq;
        r->dur_ns = 0;
        r->n = (uint8_t)(n < VP_RECORD_SPANS ? n : VP_RECORD_SPANS);
        for (size_t j = 0; j < r->n; j++) r->s[j] = s[j];
        r->id = id;
        r->kid = kid;
        r->kernel = kernel;
        r->other = other;
    }
    pthread_mutex_unlock(&mu);
    return seq;
}

void vp_record_reset_child(void)
{
    pthread_mutex_init(&mu, NULL);
    ring = NULL; /* the parent's: not freed, not ours */
    launches = 0;
    dev_kept = -1;
    vp_cupti_reset_child();
    allocs = NULL;
    nallocs = capallocs = 0;
}

/* ---- the step as a table ---- */

/* Index of x in v[0..*n), added when missing (n kept under most). */
static long index_of(const void **v, size_t *n, size_t most, const void *x)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i] == x) return (long)i;
    if (*n == most) return -1;
    v[*n] = x;
    return (long)(*n)++;
}

/* Whether span j of launch r is one its twin a step before has too (on
 * the same allocation: a tensor a caching allocator moved within it
 * counts): a span the twin lacks is a stale word of the launch's
 * parameters (what a struct's unused tail held: another address each
 * step) or a buffer made anew, and is not the step's. A twin of another
 * kernel, or none, keeps every span. */
static int twin_has(const struct rec *r, const struct rec *twin, uint8_t j)
{
    if (!twin || twin->kid != r->kid) return 1;
    for (uint8_t k = 0; k < twin->n; k++)
        if (twin->s[k].alloc == r->s[j].alloc) return 1;
    return 0;
}

/* The step's launch i (of p, the oldest at ring index start) and its twin
 * a step before (NULL: not recorded). */
static const struct rec *launch_at(uint64_t start, size_t p, size_t i, const struct rec **twin)
{
    *twin = start >= p ? &ring[(start + i - p) % VP_RECORD_OPS] : NULL;
    return &ring[(start + i) % VP_RECORD_OPS];
}

/* The table's allocations: those the launches' kept spans touch
 * (twin_has), in order of making (alloc_at: the table's number of each
 * order, -1 for none). Returns 0, or -1 on an order never made. */
static int table_allocs(struct vp_table *t, uint64_t start, size_t p, long *alloc_at)
{
    for (size_t a = 0; a < nallocs; a++) alloc_at[a] = -1;
    for (size_t i = 0; i < p; i++) {
        const struct rec *twin, *r = launch_at(start, p, i, &twin);
        for (uint8_t j = 0; j < r->n; j++) {
            if (r->s[j].alloc >= nallocs) return -1;
            if (twin_has(r, twin, j)) alloc_at[r->s[j].alloc] = 0;
        }
    }
    for (size_t a = 0; a < nallocs; a++)
        if (alloc_at[a] >= 0) {
            t->alloc_order[t->nallocs] = (uint32_t)a;
            t->alloc_bytes[t->nallocs] = allocs[a].bytes;
            alloc_at[a] = (long)t->nallocs++;
        }
    return 0;
}

/* The step's last p launches (the oldest of them at ring index start) into
 * t, each with the spans its twin a step before has too (twin_has).
 * Returns 0, or -1 when out of memory. */
static int make_table(struct vp_table *t, uint64_t start, size_t p)
{
    long *alloc_at = malloc((nallocs + 1) * sizeof *alloc_at);
    const void **names = malloc(p * sizeof *names);
    t->version = VP_TABLE_VERSION;
    t->alloc_bytes = malloc((nallocs + 1) * sizeof *t->alloc_bytes);
    t->alloc_order = malloc((nallocs + 1) * sizeof *t->alloc_order);
    t->ops = calloc(p, sizeof *t->ops);
    t->spans = calloc(p * VP_RECORD_SPANS, sizeof *t->spans);
    int ok = alloc_at && names && t->alloc_bytes && t->alloc_order && t->ops && t->spans &&
             table_allocs(t, start, p, alloc_at) == 0;
    for (size_t i = 0; ok && i < p; i++) {
        const struct rec *twin, *r = launch_at(start, p, i, &twin);
        /* a time CUPTI did not give (yet): the launch's a step before */
        uint64_t dur = r->dur_ns ? r->dur_ns : twin ? twin->dur_ns : 0;
        struct vp_table_op *o = &t->ops[t->nops++];
        *o = (struct vp_table_op){(uint32_t)index_of(names, &t->nkernels, p, r->kernel), dur, (uint32_t)t->nspans,
                                  0};
        if (r->other > t->other) t->other = r->other;
        for (uint8_t j = 0; j < r->n; j++) {
            if (!twin_has(r, twin, j)) continue;
            t->spans[t->nspans++] =
                (struct vp_table_span){(uint32_t)alloc_at[r->s[j].alloc], r->s[j].first, r->s[j].last, 0};
            o->nspans++;
        }
    }
    t->kernel = ok ? calloc(t->nkernels + 1, sizeof *t->kernel) : NULL;
    if (t->kernel) {
        for (size_t k = 0; k < t->nkernels; k++) snprintf(t->kernel[k], VP_TABLE_NAME, "%s", (const char *)names[k]);
        t->piece = t->nallocs ? allocs[t->alloc_order[0]].piece : 1;
    }
    free(alloc_at);
    free(names);
    return t->kernel ? 0 : -1;
}

/* Kernel names as the table takes them: printable ASCII without spaces. */
static void clean_names(struct vp_table *t)
{
    for (size_t k = 0; k < t->nkernels; k++) {
        for (char *c = t->kernel[k]; *c; c++)
            if (!vp_table_name_byte((unsigned char)*c)) *c = '_';
        if (!t->kernel[k][0]) strcpy(t->kernel[k], "?");
    }
    t->fingerprint = vp_table_fingerprint(t);
}

static void write_table(const struct vp_table *t, const char *path)
{
    size_t n = vp_table_write(t, NULL, 0);
    char *text = malloc(n + 1);
    const char *why = "out of memory";
    int fd = text ? vp_file_open(path, 0, &why) : -1;
    if (fd < 0) {
        vp_warn("cannot write the page table to %s (VPAGE_TABLE): %s", path, why);
    } else {
        vp_table_write(t, text, n + 1);
        vp_file_write(fd, text, n);
        vp_file_close(fd);
        vp_info("page table: a step of %zu launches on %zu allocations written to %s", t->nops, t->nallocs, path);
    }
    free(text);
}

/* How many launches before end the period p holds for (ids[i] ==
 * ids[i - p] for each of them). */
static size_t extent(const uint64_t *ids, size_t end, size_t p)
{
    size_t i = end;
    while (i > p && ids[i - 1] == ids[i - 1 - p]) i--;
    return end - i;
}

/* The step: a period of the launches' kernels that repeats three times
 * over, ending at one of the last VP_RECORD_TAIL launches (a program's
 * loop is often followed by a few launches of its own: a checksum, a
 * decode); of those, the one that holds over the most launches (the loop,
 * not three like launches of the tail). Sets *end (the step's last launch
 * + 1, counted in ids) and returns the period, or 0. */
#define VP_RECORD_TAIL 256
static size_t find_step(const uint64_t *ids, size_t n, size_t from, size_t *end, size_t *covers)
{
    size_t best = 0, best_len = 0;
    for (size_t tail = 0; tail <= VP_RECORD_TAIL && tail < n; tail++) {
        size_t p = vp_plan_period(ids, n - tail, 3, from);
        size_t len = p ? extent(ids, n - tail, p) : 0;
        if (len > best_len) {
            best = p;
            best_len = len;
            *end = n - tail;
        }
    }
    if (covers) *covers = best_len;
    return best;
}

/* A launch's identity over the allocations made before launch number
 * since (as vp_record_id, its spans on later ones left out): a buffer
 * made anew each step (a KV cache grown by a token) is not the step's
 * own, the weights it runs with are. */
static uint64_t settled_id(const struct rec *r, uint64_t since)
{
    uint64_t h = r->kid;
    for (uint8_t j = 0; j < r->n; j++)
        if (r->s[j].alloc < nallocs && allocs[r->s[j].alloc].made <= since)
            h = mix(mix(mix(h, r->s[j].alloc), r->s[j].first), r->s[j].last);
    return h;
}

/* Of the last p launches before end, how many are the launch a step
 * before on the allocations made before the three steps seen (the pieces
 * of some may differ: activations in a caching allocator's other block). */
static size_t same_as_before(uint64_t first, size_t end, size_t p)
{
    size_t same = 0;
    uint64_t since = first + (end >= 3 * p ? end - 3 * p : 0);
    for (size_t i = end - p; i < end; i++)
        same += i >= p && settled_id(&ring[(first + i) % VP_RECORD_OPS], since) ==
                              settled_id(&ring[(first + i - p) % VP_RECORD_OPS], since);
    return same;
}

/* The step by kernel names alone (the pieces a launch touches may differ
 * from step to step): of the periods of the names, the one whose launches
 * are most often the launch a step before (the shortest of equals), and
 * that more than half of them are: not a run of one kernel on ever other
 * pieces (a loop seen once), nor a part of the loop (one layer of many,
 * on other weights). Returns its period (0: none), sets *end and *covers
 * (the launches its names repeat over). */
#define VP_RECORD_PERIOD_TRIES 64
static size_t step_by_names(uint64_t *ids, size_t n, uint64_t first, size_t *end, size_t *covers)
{
    for (size_t i = 0; i < n; i++) ids[i] = ring[(first + i) % VP_RECORD_OPS].kid;
    size_t p = 0, best = 0, best_same = 0, best_end = 0, best_len = 0, e, len;
    for (int tries = 0; tries < VP_RECORD_PERIOD_TRIES && (p = find_step(ids, n, p + 1, &e, &len)); tries++) {
        size_t same = same_as_before(first, e, p);
        if (!best || same * best > best_same * p) best = p, best_same = same, best_end = e, best_len = len;
        if (same == p) break;
    }
    *end = best_end;
    *covers = best_len;
    return 2 * best_same > best ? best : 0;
}

/* The step: the period of whole launches (kernel and pieces), unless the
 * step by kernel names covers more than twice the launches (a loop whose
 * buffers change every step, as a decoded token's KV cache, ended by a
 * few like launches that repeat whole). Returns its period (0: none) and
 * sets *end. */
static size_t step_of(uint64_t *ids, size_t n, uint64_t first, size_t *end)
{
    for (size_t i = 0; i < n; i++) ids[i] = ring[(first + i) % VP_RECORD_OPS].id;
    size_t whole_end = 0, whole_len = 0, names_end = 0, names_len = 0;
    size_t whole = find_step(ids, n, 1, &whole_end, &whole_len);
    if (whole && 2 * whole_len >= n) { /* no step by names covers more than n */
        *end = whole_end;
        return whole;
    }
    size_t names = step_by_names(ids, n, first, &names_end, &names_len);
    if (names && (!whole || names_len > 2 * whole_len)) {
        *end = names_end;
        return names;
    }
    *end = whole_end;
    return whole;
}

void vp_record_finish(void)
{
    if (!vp_record_on()) return;
    vp_cupti_flush(); /* the kernels' times: their sink takes mu */
    pthread_mutex_lock(&mu);
    size_t n = launches < VP_RECORD_OPS ? (size_t)launches : VP_RECORD_OPS, end = 0;
    uint64_t *ids = malloc((n ? n : 1) * sizeof *ids), first = launches - n;
    size_t p = ids ? step_of(ids, n, first, &end) : 0;
    struct vp_table t;
    memset(&t, 0, sizeof t);
    char path[600];
    vp_expand_path(vp_opt.table, path, sizeof path);
    if (!p)
        vp_warn("page table: no step found in the last %zu launches (a loop of kernels repeated three times): "
                "nothing written to %s (VPAGE_TABLE)", n, path);
    else if (make_table(&t, first + end - p, p))
        vp_warn("page table: out of memory; nothing written to %s (VPAGE_TABLE)", path);
    else {
        clean_names(&t);
        write_table(&t, path);
    }
    vp_table_free(&t);
    free(ids);
    pthread_mutex_unlock(&mu);
}
