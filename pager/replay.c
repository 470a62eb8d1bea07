/* replay.c - see replay.h. */
#define _GNU_SOURCE
#include "replay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../books/table.h"
#include "../books/tablestep.h"
#include "../common/file.h"
#include "../common/log.h"
#include "../common/options.h"
#include "../policy/replay.h"
#include "../policy/stream.h"
#include "shared.h"
#include "winfind.h"

/* How many of a kernel's launches in the step, from the cursor on, are
 * tried for one sharing a piece with a launch found by its kernel alone. */
#define VP_REPLAY_KERNEL_TRIES 64

struct idpos {
    uint64_t id;
    uint32_t pos;
};

/* The replay's state: the table, what is known of each of its pieces and
 * launches, and the cursor. */
static struct {
    int on, dev;                /* dev: of the table's allocations (-1: none made yet) */
    struct vp_table t;
    struct vp_table_step f;
    uint32_t *ustart, *uses;    /* per piece its uses (policy/replay.h) */
    uint32_t *by;               /* the pieces in pin order (policy/replay.h), nby of them */
    size_t nby, npinned;        /* the first npinned of them are pinned */
    uint32_t *place;            /* per piece its place in that order, from 1 (0: untouched) */
    uint8_t *off;               /* per piece: launches touch it where the table does not (ranked online) */
    uint64_t *off_seen;         /* per piece: the last launch that touched it where the table does not (0: none) */
    uint8_t *streams;           /* per launch: it touches a piece that streams */
    uint8_t *thin;              /* per launch: thin (VPAGE_TABLE_LEAVE_THIN; NULL without) */
    uint64_t *op_id, *op_kid;   /* per launch: its identity, its kernel's */
    struct idpos *by_id;        /* the launches by identity, then position */
    struct idpos *by_kid;       /* the launches by kernel, then position */
    uint32_t *alloc_of;         /* per order: the table's allocation + 1 (0: none) */
    uint32_t norders;
    uint64_t budget, window, pinned; /* the pins were chosen for budget */
    int timed;                  /* ... and window is the one from the step's times */
    uint64_t expect;            /* bytes in a step the replay's policy plays for the budget
                                 * (UINT64_MAX: not known) */
    uint64_t lap_in, lap_ops;   /* bytes in, launches followed in this lap (a step's count of them) */
    uint32_t cursor;            /* the launch the next one is taken to be */
    int found, skipped;         /* skipped: the last launch was of a kernel the step never runs */
    int synced;                 /* a launch was found by its identity: the laps are counted from it */
    uint64_t launches, matched, moved, loose, kernel, lost, repins, off_pieces, off_once, gave_up, thin_seen;
} rp = {.dev = -1, .expect = UINT64_MAX};

/* The pieces the launch being followed leaves on the host
 * (vp_replay_left). */
static struct vp_replay_piece left[VP_REPLAY_LEFT];
static size_t nleft;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

int vp_replay_on(void) { return rp.on; }

int vp_replay_found(int dev) { return rp.on && rp.found && dev == rp.dev; }

uint64_t vp_replay_step_bytes(int dev) { return rp.on && dev == rp.dev ? rp.f.touched : 0; }

static int by_id_then_pos(const void *a, const void *b)
{
    const struct idpos *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Each launch's identity as the recorder computes it (pager/record.h). */
static void identities(void)
{
    const struct vp_table *t = &rp.t;
    for (size_t i = 0; i < t->nops; i++) {
        const struct vp_table_op *o = &t->ops[i];
        struct vp_record_span s[VP_RECORD_SPANS];
        size_t n = o->nspans < VP_RECORD_SPANS ? o->nspans : VP_RECORD_SPANS;
        for (size_t j = 0; j < n; j++) {
            const struct vp_table_span *ts = &t->spans[o->first_span + j];
            s[j] = (struct vp_record_span){t->alloc_order[ts->alloc], ts->first, ts->last};
        }
        rp.op_id[i] = vp_record_id(t->kernel[o->kernel], s, n, &rp.op_kid[i]);
        rp.by_id[i] = (struct idpos){rp.op_id[i], (uint32_t)i};
        rp.by_kid[i] = (struct idpos){rp.op_kid[i], (uint32_t)i};
    }
    qsort(rp.by_id, t->nops, sizeof *rp.by_id, by_id_then_pos);
    qsort(rp.by_kid, t->nops, sizeof *rp.by_kid, by_id_then_pos);
}

/* What the replay keeps of a parsed table. Returns 0, or -1 when out of
 * memory. */
static int index_table(void)
{
    const struct vp_table *t = &rp.t;
    if (vp_table_step_make(t, &rp.f)) return -1;
    if (vp_opt.table_leave_thin && (!(rp.thin = calloc(t->nops ? t->nops : 1, 1)) || vp_table_step_thin(t, &rp.f, rp.thin)))
        return -1;
    size_t np = rp.f.s.npieces, nt = 0, no = t->nops;
    for (size_t i = 0; i < no; i++) nt += rp.f.ops[i].n;
    rp.norders = t->nallocs ? t->alloc_order[t->nallocs - 1] + 1 : 0;
    rp.ustart = malloc((np + 1) * sizeof *rp.ustart);
    rp.uses = malloc((nt ? nt : 1) * sizeof *rp.uses);
    rp.by = malloc((np ? np : 1) * sizeof *rp.by);
    rp.place = calloc(np ? np : 1, sizeof *rp.place);
    rp.off = calloc(np ? np : 1, 1);
    rp.off_seen = calloc(np ? np : 1, sizeof *rp.off_seen);
    rp.streams = calloc(no, 1);
    rp.op_id = malloc(no * sizeof *rp.op_id);
    rp.op_kid = malloc(no * sizeof *rp.op_kid);
    rp.by_id = malloc(no * sizeof *rp.by_id);
    rp.by_kid = malloc(no * sizeof *rp.by_kid);
    rp.alloc_of = calloc(rp.norders ? rp.norders : 1, sizeof *rp.alloc_of);
    if (!rp.ustart || !rp.uses || !rp.by || !rp.place || !rp.off || !rp.off_seen || !rp.streams || !rp.op_id || !rp.op_kid || !rp.by_id ||
        !rp.by_kid || !rp.alloc_of)
        return -1;
    vp_replay_index(&rp.f.s, rp.ustart, rp.uses);
    rp.nby = vp_replay_pin_order(&rp.f.s, rp.ustart, rp.uses, VP_VISIT_GAP, rp.by, rp.place);
    if (!rp.nby) return -1;
    for (size_t a = 0; a < t->nallocs; a++) rp.alloc_of[t->alloc_order[a]] = (uint32_t)a + 1;
    identities();
    return 0;
}

static void drop(void)
{
    rp.on = 0;
    vp_table_step_free(&rp.f);
    vp_table_free(&rp.t);
    free(rp.ustart);
    free(rp.uses);
    free(rp.by);
    free(rp.place);
    free(rp.off);
    free(rp.off_seen);
    free(rp.streams);
    free(rp.thin);
    free(rp.op_id);
    free(rp.op_kid);
    free(rp.by_id);
    free(rp.by_kid);
    free(rp.alloc_of);
    rp.ustart = rp.uses = rp.by = rp.place = rp.alloc_of = NULL;
    rp.streams = rp.off = rp.thin = NULL;
    rp.off_seen = NULL;
    rp.op_id = rp.op_kid = NULL;
    rp.by_id = rp.by_kid = NULL;
}

static void load(void)
{
    char path[600];
    size_t len;
    const char *why = NULL;
    vp_expand_path(vp_opt.table, path, sizeof path);
    char *text = vp_file_slurp(path, VP_TABLE_MAX_BYTES, &len);
    if (!text) {
        if (len > VP_TABLE_MAX_BYTES) vp_warn("page table %s is too large: not replayed (VPAGE_TABLE)", path);
        return; /* no table yet: this run writes it */
    }
    if (vp_table_parse(text, len, &rp.t, &why)) {
        vp_warn("page table %s refused: %s; paging online (VPAGE_TABLE)", path, why);
    } else if (rp.t.version < 2) {
        vp_warn("page table %s is of version %u, without allocation orders: not replayed (VPAGE_TABLE)", path,
                rp.t.version);
        vp_table_free(&rp.t);
    } else if (index_table()) {
        vp_warn("page table %s: out of memory; paging online (VPAGE_TABLE)", path);
        drop();
    } else {
        rp.on = 1;
        vp_info("page table %s: a step of %zu launches on %zu allocations, replayed (fingerprint %016llx)", path,
                rp.t.nops, rp.t.nallocs, (unsigned long long)rp.t.fingerprint);
    }
    free(text);
}

void vp_replay_load(void)
{
    if (vp_opt.table[0]) pthread_once(&load_once, load);
}

/* VPAGE_TABLE_WINDOW=timed: the window from the step's times starts being
 * found (pager/winfind.h) for dev's cap less the table's other memory and
 * the reserve (policy/stream.h; the budget the pager's plans give the
 * replay), nothing without a cap or with VPAGE_STREAM_WINDOW set. */
static void start_window(int dev)
{
    uint64_t cap = vp_opt.cap.dev[dev] != VP_NO_CAP ? vp_opt.cap.dev[dev] : vp_opt.cap.all;
    if (vp_opt.table_window != VP_TABLE_WINDOW_TIMED || vp_opt.stream_window || cap == VP_NO_CAP) return;
    uint64_t budget = cap > rp.t.other ? cap - rp.t.other : 0;
    uint64_t reserve = vp_stream_reserve(budget, rp.f.touched, vp_opt.stream_ahead ? vp_opt.stream_reserve : 0,
                                         rp.t.piece);
    vp_winfind_start(&rp.f.s, budget - reserve, rp.t.piece);
}

void vp_replay_alloc(uint32_t order, uint64_t span, uint64_t piece, int dev)
{
    if (!rp.on || order >= rp.norders || !rp.alloc_of[order]) return;
    uint32_t a = rp.alloc_of[order] - 1;
    if (rp.dev < 0) {
        rp.dev = dev;
        start_window(dev);
    }
    if (rp.t.alloc_bytes[a] == span && rp.t.piece == piece && dev == rp.dev) return;
    vp_warn("page table is of another program or shape: allocation %u is %llu bytes in pieces of %llu on device "
            "%d here, %llu in pieces of %llu in the table; not replayed (VPAGE_TABLE)", order,
            (unsigned long long)span, (unsigned long long)piece, dev, (unsigned long long)rp.t.alloc_bytes[a],
            (unsigned long long)rp.t.piece);
    drop();
}

/* The index in arr (the step's launches by key, then position) of the
 * launch of key nearest at or after the cursor, around the step; -1 when
 * the step has none. */
static long nearest(const struct idpos *arr, uint64_t key)
{
    size_t lo = 0, hi = rp.t.nops;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (arr[mid].id < key || (arr[mid].id == key && arr[mid].pos < rp.cursor)) lo = mid + 1;
        else hi = mid;
    }
    if (lo < rp.t.nops && arr[lo].id == key) return (long)lo;
    while (lo > 0 && arr[lo - 1].id == key) lo--; /* none after: the first */
    return lo < rp.t.nops && arr[lo].id == key ? (long)lo : -1;
}

/* The launch with identity id nearest at or after the cursor; -1: none. */
static long find(uint64_t id)
{
    long i = nearest(rp.by_id, id);
    return i < 0 ? -1 : (long)rp.by_id[i].pos;
}

/* Whether launch at of the step touches piece x. */
static int op_touches(uint32_t at, uint64_t x)
{
    const struct vp_step_op *o = &rp.f.ops[at];
    for (uint32_t j = 0; j < o->n; j++)
        if (rp.f.touch[o->first + j] == x) return 1;
    return 0;
}

/* A launch taken for launch at of the step on other pieces: the pieces it
 * touches that the step's launch does not are used otherwise than the
 * table says (a caching allocator put another tensor there in this run):
 * from the second such launch on a piece within a step, that piece ranks
 * online (vp_replay_off_again: one alone may be a stale word in the
 * kernel's parameters). */
static void mark_off(uint32_t at, const struct vp_record_span *s, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (s[j].alloc >= rp.norders || !rp.alloc_of[s[j].alloc]) continue;
        uint32_t a = rp.alloc_of[s[j].alloc] - 1;
        uint64_t np = vp_table_pieces(&rp.t, a);
        for (uint64_t k = s[j].first; k <= s[j].last && k < np; k++) {
            uint64_t x = rp.f.base[a] + k;
            if (rp.off[x] || op_touches(at, x)) continue;
            if (!vp_replay_off_again(rp.off_seen[x], rp.launches, rp.t.nops)) {
                rp.off_once += rp.off_seen[x] != rp.launches;
                rp.off_seen[x] = rp.launches;
                if (vp_opt.table_leave_stale && nleft < VP_REPLAY_LEFT)
                    left[nleft++] = (struct vp_replay_piece){s[j].alloc, (uint32_t)k, 0};
                continue;
            }
            rp.off[x] = 1;
            rp.off_pieces++;
        }
    }
}

/* Whether launch at of the step touches the first piece of one of s[0..n)
 * that the table knows (a weight's, as a rule: activations move between
 * runs). */
static int op_shares(uint32_t at, const struct vp_record_span *s, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (s[j].alloc >= rp.norders || !rp.alloc_of[s[j].alloc]) continue;
        uint32_t a = rp.alloc_of[s[j].alloc] - 1;
        if (s[j].first < vp_table_pieces(&rp.t, a) && op_touches(at, rp.f.base[a] + s[j].first)) return 1;
    }
    return 0;
}

/* A launch of kernel kid whose pieces the step does not have together (a
 * caching allocator's other block, a tensor made anew each step): of the
 * step's launches of that kernel from the cursor on, the first that shares
 * one of its pieces (*sure = 1), else the first after the cursor (0).
 * Returns its position, or -1 when the step never runs that kernel. */
static long find_kernel(uint64_t kid, const struct vp_record_span *s, size_t n, int *sure)
{
    long i = nearest(rp.by_kid, kid);
    if (i < 0) return -1;
    size_t lo = (size_t)i, hi = (size_t)i + 1; /* the kernel's launches: by_kid[lo..hi) */
    while (lo > 0 && rp.by_kid[lo - 1].id == kid) lo--;
    while (hi < rp.t.nops && rp.by_kid[hi].id == kid) hi++;
    size_t count = hi - lo, tries = count < VP_REPLAY_KERNEL_TRIES ? count : VP_REPLAY_KERNEL_TRIES;
    for (size_t k = 0; k < tries; k++) {
        uint32_t at = rp.by_kid[lo + ((size_t)i - lo + k) % count].pos;
        if (op_shares(at, s, n)) {
            *sure = 1;
            return at;
        }
    }
    *sure = 0;
    return rp.by_kid[i].pos;
}

/* A lap ended: as many launches followed as the step has (counted, not
 * seen from the cursor going back: a launch found by its kernel or
 * elsewhere in the step may send it back anywhere, and a lap cut at each
 * such jump never grew to a step's). The replay gives up, and pages
 * online from then on, when the lap brought in more than twice what its
 * policy plays for a step plus the budget (a first step's pins): the
 * table does not fit this run (a decode whose steps differ from the one
 * recorded), and online paging moves less. */
static void lap_end(void)
{
    uint64_t lap = rp.lap_in;
    rp.lap_in = rp.lap_ops = 0;
    if (rp.expect == UINT64_MAX || lap <= 2 * rp.expect + rp.budget) return;
    vp_warn("page table: a step of it brought in %.0f MiB where it plays for %.0f MiB: paging online from now on "
            "(VPAGE_TABLE)", lap / 1048576.0, rp.expect / 1048576.0);
    rp.gave_up++;
    drop();
}

void vp_replay_came_in(int dev, uint64_t bytes)
{
    if (rp.on && rp.synced && dev == rp.dev) rp.lap_in += bytes;
}

/* Whether launch at of the step is thin (VPAGE_TABLE_LEAVE_THIN). */
static int is_thin(long at) { return rp.thin && rp.thin[at]; }

/* A thin launch: every piece of s[0..n) it touches is left on the host
 * for it where it is not resident. */
static void leave_thin(const struct vp_record_span *s, size_t n)
{
    rp.thin_seen++;
    for (size_t j = 0; j < n; j++)
        for (uint64_t k = s[j].first; k <= s[j].last && nleft < VP_REPLAY_LEFT; k++)
            left[nleft++] = (struct vp_replay_piece){s[j].alloc, (uint32_t)k, 1};
}

/* The first launch found by its identity (kernel and pieces, at the
 * cursor or elsewhere in the step) begins the first lap: what came in
 * before it is the program's work before its loop (building or loading
 * its weights, a prompt's prefill), which a step of the table does not
 * play for. A loop never found by identity is not judged. Before it, a
 * launch found by its kernel alone places the cursor but says nothing of
 * its pieces (no piece is marked off), and none is taken loosely for the
 * launch at the cursor: that cursor is itself a guess. */
static void sync_laps(void)
{
    if (rp.synced) return;
    rp.synced = 1;
    rp.lap_in = rp.lap_ops = 0;
}

int vp_replay_launch(uint64_t id, uint64_t kid, int dev, const struct vp_record_span *s, size_t n)
{
    nleft = 0; /* a launch not followed (no table, or given up) has none */
    if (!rp.on || dev != rp.dev) return 0;
    long at = -1;
    int sure = 0;
    rp.launches++;
    if (rp.found && rp.op_id[rp.cursor] == id) {
        at = rp.cursor;
        rp.matched++;
        sync_laps();
    } else if ((at = find(id)) >= 0) {
        rp.moved++;
        sync_laps();
    } else if (rp.synced && !rp.skipped && rp.op_kid[rp.cursor] == kid) {
        at = rp.cursor;
        rp.loose++;
        if (!is_thin(at)) mark_off((uint32_t)at, s, n);
    } else if ((at = find_kernel(kid, s, n, &sure)) >= 0) {
        rp.kernel++;
        if (sure && rp.synced && !is_thin(at)) mark_off((uint32_t)at, s, n);
    } else {
        rp.lost++; /* the cursor stays: the launch may stand for the one there */
        rp.skipped = 1;
        return 0;
    }
    rp.found = 1;
    rp.skipped = 0;
    if (is_thin(at)) leave_thin(s, n);
    if (rp.synced && ++rp.lap_ops >= rp.t.nops) {
        lap_end();
        if (!rp.on) return 0;
    }
    rp.cursor = (uint32_t)((size_t)(at + 1) % rp.t.nops);
    return rp.streams[at];
}

size_t vp_replay_left(const struct vp_replay_piece **out)
{
    *out = left;
    return nleft;
}

void vp_replay_budget(int dev, uint64_t budget)
{
    if (!rp.on || dev != rp.dev) return;
    /* found only where start_window asked for it (not with VPAGE_STREAM_WINDOW) */
    uint64_t d = budget > rp.budget ? budget - rp.budget : rp.budget - budget, timed = vp_winfind_found();
    if (rp.budget && d < rp.t.piece && !timed == !rp.timed) return;
    int first = !rp.budget || !timed != !rp.timed;
    rp.budget = budget;
    rp.timed = timed != 0;
    rp.window = timed ? (timed < budget ? timed : budget)
                      : vp_replay_window(&rp.f.s, budget, rp.t.piece, vp_opt.stream_window);
    size_t was = rp.npinned;
    rp.npinned = vp_replay_pin_count(&rp.f.s, rp.by, rp.nby, budget, rp.window, &rp.pinned);
    if (rp.npinned == was && !first) return;
    rp.repins++;
    uint64_t pinned;
    rp.expect = vp_replay_play(&rp.f.s, budget, rp.window, VP_VISIT_GAP, &pinned); /* UINT64_MAX: out of memory */
    for (size_t i = 0; i < rp.t.nops; i++) {
        const struct vp_step_op *o = &rp.f.ops[i];
        rp.streams[i] = 0;
        for (uint32_t j = 0; j < o->n; j++) rp.streams[i] |= rp.place[rp.f.touch[o->first + j]] > rp.npinned;
    }
    vp_info("page table: %.0f MiB of the step's %.0f MiB pinned under a budget of %.0f MiB (window %.0f MiB%s)",
            rp.pinned / 1048576.0, rp.f.touched / 1048576.0, budget / 1048576.0, rp.window / 1048576.0,
            rp.timed ? ", from the step's times" : "");
}

int vp_replay_rank_piece(uint32_t order, uint32_t k, int dev, uint64_t now, uint8_t *cls, uint64_t *key,
                         uint64_t *when)
{
    if (!rp.on || dev != rp.dev || order >= rp.norders || !rp.alloc_of[order]) return 0;
    uint32_t a = rp.alloc_of[order] - 1;
    if (k >= vp_table_pieces(&rp.t, a)) return 0;
    uint64_t x = rp.f.base[a] + k;
    uint32_t n = rp.ustart[x + 1] - rp.ustart[x];
    int thin_only = !n && rp.f.thin && rp.f.thin[x]; /* wanted by no launch of the plan: never ahead */
    if ((!n && !thin_only) || rp.off[x]) return 0;
    uint32_t pin = rp.place[x] <= rp.npinned ? rp.place[x] : 0;
    if (!rp.found && !pin) return 0; /* the pins are the loop's wherever the cursor is */
    uint32_t dist = rp.found && n ? vp_replay_next(rp.uses + rp.ustart[x], n, (uint32_t)rp.t.nops, rp.cursor)
                             : VP_REPLAY_NEVER;
    vp_replay_rank(pin, dist, now, cls, key, when);
    return 1;
}

void vp_replay_report(int json, vp_emit_fn emit, void *ctx, int dev)
{
    if (!vp_opt.table[0] || (rp.dev >= 0 && dev != rp.dev)) return;
    vp_report_field(json, emit, ctx, "replay_on", (uint64_t)rp.on);
    vp_report_field(json, emit, ctx, "replay_launches", rp.launches);
    vp_report_field(json, emit, ctx, "replay_matched", rp.matched);
    vp_report_field(json, emit, ctx, "replay_moved", rp.moved);
    vp_report_field(json, emit, ctx, "replay_loose", rp.loose);
    vp_report_field(json, emit, ctx, "replay_kernel", rp.kernel);
    vp_report_field(json, emit, ctx, "replay_lost", rp.lost);
    vp_report_field(json, emit, ctx, "replay_pinned", rp.pinned);
    vp_report_field(json, emit, ctx, "replay_window", rp.window);
    vp_report_field(json, emit, ctx, "replay_window_timed", (uint64_t)rp.timed);
    vp_report_field(json, emit, ctx, "replay_repins", rp.repins);
    vp_report_field(json, emit, ctx, "replay_off_pieces", rp.off_pieces);
    vp_report_field(json, emit, ctx, "replay_off_once", rp.off_once);
    vp_report_field(json, emit, ctx, "replay_gave_up", rp.gave_up);
    vp_report_field(json, emit, ctx, "replay_thin_launches", rp.thin_seen);
}

void vp_replay_reset_child(void)
{
    rp.on = rp.found = rp.skipped = rp.synced = 0;
}
