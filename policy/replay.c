/* replay.c - see replay.h. */
#include "replay.h"

#include <stdlib.h>

#include "stream.h"

void vp_replay_index(const struct vp_step *s, uint32_t *start, uint32_t *ops)
{
    for (size_t x = 0; x <= s->npieces; x++) start[x] = 0;
    for (size_t i = 0; i < s->nops; i++)
        for (uint32_t j = 0; j < s->ops[i].n; j++) start[s->touch[s->ops[i].first + j] + 1]++;
    for (size_t x = 0; x < s->npieces; x++) start[x + 1] += start[x];
    /* filled in op order: each piece's uses come out ascending; start[x]
     * runs ahead while filling and is put back after */
    for (size_t i = 0; i < s->nops; i++)
        for (uint32_t j = 0; j < s->ops[i].n; j++) ops[start[s->touch[s->ops[i].first + j]]++] = (uint32_t)i;
    for (size_t x = s->npieces; x > 0; x--) start[x] = start[x - 1];
    start[0] = 0;
}

uint32_t vp_replay_next(const uint32_t *u, uint32_t n, uint32_t nops, uint32_t at)
{
    if (!n) return VP_REPLAY_NEVER;
    uint32_t lo = 0, hi = n; /* the first use >= at */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (u[mid] < at) lo = mid + 1;
        else hi = mid;
    }
    return lo < n ? u[lo] - at : nops - at + u[0];
}

uint32_t vp_replay_visits(const uint32_t *u, uint32_t n, uint32_t nops, uint32_t gap)
{
    if (!n) return 0;
    uint32_t v = nops - u[n - 1] + u[0] > gap; /* the first use starts one, around the loop */
    for (uint32_t j = 1; j < n; j++) v += u[j] - u[j - 1] > gap;
    return v ? v : 1;
}

int vp_replay_off_again(uint64_t seen, uint64_t now, uint64_t nops)
{
    return seen && now > seen && now - seen <= nops;
}

int vp_replay_thin(double dur_s, uint64_t bytes, uint64_t piece)
{
    return dur_s > 0 && bytes >= piece && (double)bytes > VP_REPLAY_THIN_RATIO * VP_REPLAY_THIN_READ * dur_s;
}

/* The most bytes one op of s touches. */
static uint64_t most_touched(const struct vp_step *s)
{
    uint64_t most = 0;
    for (size_t i = 0; i < s->nops; i++) {
        uint64_t b = vp_step_op_bytes(s, i);
        if (b > most) most = b;
    }
    return most;
}

uint64_t vp_replay_window(const struct vp_step *s, uint64_t budget, uint64_t piece, uint64_t want)
{
    uint64_t w = want ? want : 2 * most_touched(s);
    if (w < 4 * piece) w = 4 * piece;
    return w < budget ? w : budget;
}

struct cand {
    uint32_t x, visits, first, spread;
};

static int by_visits_then_spread(const void *a, const void *b)
{
    const struct cand *p = a, *q = b;
    if (p->visits != q->visits) return p->visits > q->visits ? -1 : 1;
    if (p->spread != q->spread) return p->spread < q->spread ? -1 : 1;
    return p->x < q->x ? -1 : p->x > q->x;
}

static int by_visits_then_first(const void *a, const void *b)
{
    const struct cand *p = a, *q = b;
    if (p->visits != q->visits) return p->visits > q->visits ? -1 : 1;
    if (p->first != q->first) return p->first < q->first ? -1 : 1;
    return p->x < q->x ? -1 : p->x > q->x;
}

/* i's bits reversed in a field of bits bits. */
static uint32_t reversed(uint32_t i, unsigned bits)
{
    uint32_t r = 0;
    for (unsigned b = 0; b < bits; b++) r |= ((i >> b) & 1u) << (bits - 1 - b);
    return r;
}

/* Within each group of equal visits (c sorted by visits, then first use),
 * each piece's place in the bit-reversed order of its first use. */
static void spread(struct cand *c, size_t n)
{
    for (size_t g = 0, e; g < n; g = e) {
        for (e = g; e < n && c[e].visits == c[g].visits;) e++;
        unsigned bits = 0;
        while (bits < 32 && ((size_t)1 << bits) < e - g) bits++;
        for (size_t j = g; j < e; j++) c[j].spread = reversed((uint32_t)(j - g), bits);
    }
}

size_t vp_replay_pin_order(const struct vp_step *s, const uint32_t *start, const uint32_t *ops, uint32_t gap,
                           uint32_t *by, uint32_t *place)
{
    struct cand *c = malloc((s->npieces ? s->npieces : 1) * sizeof *c);
    if (!c) return 0;
    for (size_t x = 0; place && x < s->npieces; x++) place[x] = 0;
    size_t n = 0;
    for (size_t x = 0; x < s->npieces; x++) {
        uint32_t k = start[x + 1] - start[x];
        if (k)
            c[n++] = (struct cand){(uint32_t)x, vp_replay_visits(ops + start[x], k, (uint32_t)s->nops, gap),
                                   ops[start[x]], 0};
    }
    qsort(c, n, sizeof *c, by_visits_then_first);
    spread(c, n);
    qsort(c, n, sizeof *c, by_visits_then_spread);
    for (size_t j = 0; j < n; j++) {
        by[j] = c[j].x;
        if (place) place[c[j].x] = (uint32_t)j + 1;
    }
    free(c);
    return n;
}

size_t vp_replay_pin_count(const struct vp_step *s, const uint32_t *by, size_t n, uint64_t budget, uint64_t window,
                           uint64_t *bytes)
{
    uint64_t touched = 0, room, sum = 0;
    for (size_t j = 0; j < n; j++) touched += s->bytes[by[j]];
    room = touched <= budget ? budget : budget > window ? budget - window : 0;
    size_t k = 0;
    for (; k < n && s->bytes[by[k]] <= room - sum; k++) sum += s->bytes[by[k]];
    *bytes = sum;
    return k;
}

void vp_replay_rank(uint32_t pin, uint32_t dist, uint64_t now, uint8_t *cls, uint64_t *key, uint64_t *when)
{
    *when = now + 1 + (dist == VP_REPLAY_NEVER ? VP_KEY_GUESS : dist);
    *cls = pin ? VP_SC_PIN : VP_SC_NEXT;
    *key = pin ? pin : *when;
}

/* What vp_replay_play and vp_replay_plan work with. */
struct play {
    const struct vp_step *s;
    uint32_t *start, *uses, *by, *place;
    uint8_t *resident, *asked;
    struct vp_spc *c;
    size_t npinned;
    /* recording the moves as a plan (vp_replay_plan; rec NULL: bytes only) */
    struct vp_plan *rec;
    uint8_t *pending;  /* per piece: brought in ahead, not used since */
    uint8_t *left;     /* per piece: sent out while recording */
    uint64_t *last;    /* per piece: its last use, in ops from the first played */
    uint64_t g, from;  /* the op played, and the first recorded, counted from the first played */
    uint64_t dropped;  /* bytes brought in and sent out before a use, while recording */
    int overflow;
};

static void play_free(struct play *p)
{
    free(p->start);
    free(p->uses);
    free(p->by);
    free(p->place);
    free(p->resident);
    free(p->asked);
    free(p->c);
    free(p->pending);
    free(p->left);
    free(p->last);
}

/* The play's arrays for s, and its pins under budget less window. Returns
 * 0, or -1 when out of memory. */
static int play_make(struct play *p, const struct vp_step *s, uint64_t budget, uint64_t window, uint32_t gap,
                     uint64_t *pinned, int rec)
{
    size_t np = s->npieces ? s->npieces : 1, nt = 1;
    for (size_t i = 0; i < s->nops; i++) nt += s->ops[i].n;
    *p = (struct play){.s = s,
                       .start = malloc((np + 1) * sizeof(uint32_t)),
                       .uses = malloc(nt * sizeof(uint32_t)),
                       .by = malloc(np * sizeof(uint32_t)),
                       .place = calloc(np, sizeof(uint32_t)),
                       .resident = calloc(np, 1),
                       .asked = calloc(np, 1),
                       .c = malloc(np * sizeof(struct vp_spc))};
    if (rec) {
        p->pending = calloc(np, 1);
        p->left = calloc(np, 1);
        p->last = calloc(np, sizeof *p->last);
    }
    *pinned = 0;
    if (!p->start || !p->uses || !p->by || !p->place || !p->resident || !p->asked || !p->c ||
        (rec && (!p->pending || !p->left || !p->last)))
        return -1;
    vp_replay_index(s, p->start, p->uses);
    size_t n = vp_replay_pin_order(s, p->start, p->uses, gap, p->by, p->place);
    p->npinned = vp_replay_pin_count(s, p->by, n, budget, window, pinned);
    return 0;
}

/* A move of the recorded plan at op g (counted from the first played). */
static void rec_move(struct play *p, uint64_t g, uint32_t x, int out)
{
    struct vp_plan *r = p->rec;
    uint64_t n = p->s->nops;
    int wrap = g < p->from;
    uint32_t op = (uint32_t)(wrap ? g % n : g - p->from);
    if (r->moves && r->nmoves == r->cap) p->overflow = 1;
    else if (r->moves) r->moves[r->nmoves++] = (struct vp_move){op, x, (uint8_t)out, (uint8_t)wrap};
    uint64_t *sum = out ? &r->period_out : &r->period_in;
    if (!out || (p->s->dirty && p->s->dirty[x])) *sum += p->s->bytes[x];
}

/* Recording: op g uses piece x (asked for), resident now. */
static void rec_use(struct play *p, uint32_t x)
{
    if (!p->rec) return;
    if (p->g >= p->from && (p->pending[x] || !p->resident[x])) rec_move(p, p->g, x, 0);
    p->pending[x] = 0;
    p->last[x] = p->g;
}

/* Recording: piece x comes in (asked: for the op played) or leaves. */
static void rec_change(struct play *p, uint32_t x, int in, int asked)
{
    if (!p->rec) return;
    if (in) {
        p->pending[x] = !asked;
        return;
    }
    if (p->g >= p->from) {
        if (p->pending[x]) p->dropped += p->s->bytes[x]; /* never used: no move of the plan */
        else rec_move(p, p->last[x], x, 1);
        p->left[x] = 1;
    }
    p->pending[x] = 0;
}

/* Op i of a step: its pieces asked for, the rest ranked with the cursor
 * after it; the wanted set becomes resident. Returns the bytes brought in. */
static uint64_t play_op(struct play *p, uint32_t i, uint64_t budget)
{
    const struct vp_step *s = p->s;
    uint32_t cursor = (i + 1) % (uint32_t)s->nops;
    uint64_t in = 0, when;
    for (uint32_t j = 0; j < s->ops[i].n; j++) {
        uint32_t x = s->touch[s->ops[i].first + j];
        if (!p->asked[x]) rec_use(p, x);
        p->asked[x] = 1;
    }
    for (size_t x = 0; x < s->npieces; x++) {
        struct vp_spc *c = &p->c[x];
        uint32_t n = p->start[x + 1] - p->start[x], pin = p->place[x] <= p->npinned ? p->place[x] : 0;
        *c = (struct vp_spc){.bytes = s->bytes[x], .ref = (void *)(uintptr_t)x};
        if (p->asked[x]) c->cls = VP_SC_NOW, c->key = 1;
        else vp_replay_rank(pin, vp_replay_next(p->uses + p->start[x], n, (uint32_t)s->nops, cursor), 0, &c->cls,
                            &c->key, &when);
    }
    vp_stream_desire(p->c, s->npieces, budget);
    for (size_t j = 0; j < s->npieces; j++) {
        size_t x = (uintptr_t)p->c[j].ref;
        if (p->c[j].want && !p->resident[x]) in += p->c[j].bytes;
        if (p->c[j].want != p->resident[x]) rec_change(p, (uint32_t)x, p->c[j].want, p->asked[x]);
        p->resident[x] = p->c[j].want;
        p->asked[x] = 0;
    }
    p->g++;
    return in;
}

uint64_t vp_replay_play(const struct vp_step *s, uint64_t budget, uint64_t window, uint32_t gap, uint64_t *pinned)
{
    struct play p;
    uint64_t in = UINT64_MAX;
    if (!play_make(&p, s, budget, window, gap, pinned, 0)) {
        for (int step = 0; step < 3; step++) {
            in = 0;
            for (uint32_t i = 0; i < s->nops; i++) in += play_op(&p, i, budget);
        }
    }
    play_free(&p);
    return in;
}

int vp_replay_plan(const struct vp_step *s, uint64_t budget, uint64_t window, uint32_t gap, struct vp_plan *r,
                   uint64_t *dropped)
{
    struct play p = {0};
    uint64_t pinned;
    int rc = VP_PLAN_BAD_TABLE;
    r->nmoves = 0;
    r->period_in = r->period_out = 0;
    *dropped = 0;
    if (s->nops && !play_make(&p, s, budget, window, gap, &pinned, 1)) {
        p.rec = r;
        p.from = (uint64_t)VP_REPLAY_WARMUP * s->nops;
        for (unsigned step = 0; step < VP_REPLAY_WARMUP + VP_REPLAY_PLAN_STEPS; step++) {
            if (step == VP_REPLAY_WARMUP)
                for (size_t x = 0; x < s->npieces; x++) r->resident_at_start[x] = p.resident[x] && !p.pending[x];
            for (uint32_t i = 0; i < s->nops; i++) play_op(&p, i, budget);
        }
        for (size_t x = 0; x < s->npieces; x++) r->pinned[x] = r->resident_at_start[x] && !p.left[x];
        r->period_steps = 0;
        r->steps_to_settle = VP_REPLAY_WARMUP;
        r->moves_steps = VP_REPLAY_PLAN_STEPS;
        r->bytes_in = r->period_in / VP_REPLAY_PLAN_STEPS;
        r->bytes_out = r->period_out / VP_REPLAY_PLAN_STEPS;
        *dropped = p.dropped / VP_REPLAY_PLAN_STEPS;
        rc = p.overflow ? VP_PLAN_NO_ROOM : VP_PLAN_OK;
    }
    play_free(&p);
    return rc;
}

int vp_replay_plan_make(const struct vp_step *s, struct vp_plan *p)
{
    size_t touches = 1;
    for (size_t i = 0; i < s->nops; i++) touches += s->ops[i].n;
    *p = (struct vp_plan){.cap = 2 * touches * VP_REPLAY_PLAN_STEPS + 1};
    p->moves = malloc(p->cap * sizeof *p->moves);
    p->resident_at_start = malloc(s->npieces + 1);
    p->pinned = malloc(s->npieces + 1);
    return p->moves && p->resident_at_start && p->pinned ? 0 : -1;
}

/* The replay of s under budget with window w, timed on bus b: the step's
 * seconds, or a negative value. p: arrays for vp_replay_plan. */
static double timed(const struct vp_step *s, uint64_t budget, uint64_t w, uint32_t gap, const struct vp_bus *b,
                    struct vp_plan *p)
{
    uint64_t dropped;
    if (vp_replay_plan(s, budget, w, gap, p, &dropped) != VP_PLAN_OK) return -1;
    return vp_plan_simulate(s, budget, p, b, NULL);
}

uint64_t vp_replay_window_timed(const struct vp_step *s, uint64_t budget, uint64_t piece, uint32_t gap,
                                const struct vp_bus *b, double *step_s)
{
    uint64_t rule = vp_replay_window(s, budget, piece, 0), lo = most_touched(s), hi = 2 * rule, best = rule;
    *step_s = -1;
    if (lo < 4 * piece) lo = 4 * piece;
    if (hi > budget) hi = budget;
    if (lo >= hi) return rule;
    struct vp_plan p;
    double at_rule = vp_replay_plan_make(s, &p) ? -1 : timed(s, budget, rule, gap, b, &p);
    if (at_rule < 0) best = 0;
    for (unsigned k = 0; at_rule >= 0 && k < VP_REPLAY_WINDOWS; k++) {
        uint64_t w = lo + (hi - lo) / (VP_REPLAY_WINDOWS - 1) * k;
        double t = timed(s, budget, w, gap, b, &p);
        /* a larger window only where it is faster by more than 1% */
        if (t >= 0 && (*step_s < 0 || t < *step_s * 0.99)) {
            *step_s = t;
            best = w;
        }
    }
    if (at_rule >= 0 && (*step_s < 0 || at_rule < *step_s * 0.99)) {
        *step_s = at_rule;
        best = rule;
    }
    vp_plan_free(&p);
    return best;
}
