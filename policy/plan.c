/* plan.c - see plan.h. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>


uint64_t vp_step_op_bytes(const struct vp_step *s, size_t i)
{
    uint64_t b = 0;
    for (uint32_t j = 0; j < s->ops[i].n; j++) b += s->bytes[s->touch[s->ops[i].first + j]];
    return b;
}

size_t vp_plan_period(const uint64_t *ids, size_t n, unsigned reps, size_t from)
{
    if (reps < 2 || n < reps) return 0;
    for (size_t p = from ? from : 1; p <= n / reps; p++) {
        size_t span = (size_t)(reps - 1) * p, k = 1;
        while (k <= span && ids[n - k] == ids[n - k - p]) k++;
        if (k > span) return p;
    }
    return 0;
}

/* ---- uses of each piece ---- */

/* The ops that use each piece, in order: use[at[x] .. at[x + 1]). */
struct uses {
    uint32_t *at, *use;
};

static void uses_free(struct uses *u)
{
    free(u->at);
    free(u->use);
}

/* Over q steps in a row (op g of them is the step's op g % nops). */
static int uses_make(const struct vp_step *s, unsigned q, struct uses *u)
{
    size_t total = 0;
    for (size_t i = 0; i < s->nops; i++) total += s->ops[i].n;
    u->at = calloc(s->npieces + 1, sizeof *u->at);
    u->use = malloc((total ? total * q : 1) * sizeof *u->use);
    uint32_t *fill = calloc(s->npieces ? s->npieces : 1, sizeof *fill);
    if (!u->at || !u->use || !fill) {
        free(fill);
        return -1;
    }
    for (size_t i = 0; i < s->nops; i++)
        for (uint32_t j = 0; j < s->ops[i].n; j++) u->at[s->touch[s->ops[i].first + j] + 1] += q;
    for (size_t x = 0; x < s->npieces; x++) u->at[x + 1] += u->at[x];
    for (size_t g = 0; g < q * s->nops; g++) {
        const struct vp_step_op *o = &s->ops[g % s->nops];
        for (uint32_t j = 0; j < o->n; j++) {
            uint32_t x = s->touch[o->first + j];
            u->use[u->at[x] + fill[x]++] = (uint32_t)g; /* ops in order: sorted */
        }
    }
    free(fill);
    return 0;
}

/* The first use of x after op i, as a count of ops from i (wrapping into
 * the next step); nothing: beyond any. */
static uint64_t next_use(const struct uses *u, size_t nops, uint32_t x, uint32_t i)
{
    uint32_t lo = u->at[x], hi = u->at[x + 1];
    if (lo == hi) return UINT64_MAX;
    uint32_t a = lo, b = hi;
    while (a < b) { /* first use > i */
        uint32_t m = a + (b - a) / 2;
        if (u->use[m] <= i) a = m + 1;
        else b = m;
    }
    return a < hi ? u->use[a] - i : u->use[lo] + nops - i;
}

/* The last use of x before op i (wrapping into the step before). */
static uint32_t prev_use(const struct uses *u, uint32_t x, uint32_t i)
{
    uint32_t lo = u->at[x], hi = u->at[x + 1], last = u->use[hi - 1];
    for (uint32_t k = hi; k-- > lo;)
        if (u->use[k] < i) return u->use[k];
    return last;
}

/* ---- the table checked ---- */

static int check_table(const struct vp_step *s, uint64_t budget, uint8_t *mark)
{
    if (!s->nops || !s->ops || !s->touch || !s->bytes) return VP_PLAN_BAD_TABLE;
    for (size_t i = 0; i < s->nops; i++) {
        uint64_t need = 0;
        for (uint32_t j = 0; j < s->ops[i].n; j++) {
            uint32_t x = s->touch[s->ops[i].first + j];
            if (x >= s->npieces) return VP_PLAN_BAD_TABLE;
            if (!mark[x]) need += s->bytes[x];
            mark[x] = 1;
        }
        for (uint32_t j = 0; j < s->ops[i].n; j++) mark[s->touch[s->ops[i].first + j]] = 0;
        if (need > budget) return VP_PLAN_TOO_BIG;
    }
    return VP_PLAN_OK;
}

/* ---- the loop played under Belady's rule ---- */

struct pass {
    const struct vp_step *s;
    const struct uses *u;      /* of one step: the future repeats it */
    uint64_t budget, held;
    uint8_t *resident, *needed, *left; /* per piece */
    struct vp_plan *p;         /* moves recorded when p->moves */
    unsigned step, q;          /* the step played, of a period of q (recording) */
    uint64_t bytes_in, bytes_out;
    int record, overflow;
};

static void add_move(struct pass *ps, uint32_t op, uint32_t piece, int out, int wrap)
{
    struct vp_plan *p = ps->p;
    if (!ps->record || !p->moves) return;
    if (p->nmoves == p->cap) {
        ps->overflow = 1;
        return;
    }
    p->moves[p->nmoves++] = (struct vp_move){op, piece, (uint8_t)out, (uint8_t)wrap};
}

/* The resident piece op i does not need whose next use is furthest, a clean
 * one first at the same distance; npieces when there is none. */
static uint32_t victim(const struct pass *ps, uint32_t i)
{
    const struct vp_step *s = ps->s;
    uint32_t best = (uint32_t)s->npieces;
    uint64_t far = 0;
    int best_dirty = 1;
    for (uint32_t x = 0; x < s->npieces; x++) {
        if (!ps->resident[x] || ps->needed[x]) continue;
        uint64_t d = next_use(ps->u, s->nops, x, i);
        int dirty = s->dirty && s->dirty[x];
        if (best == s->npieces || d > far || (d == far && best_dirty && !dirty)) {
            best = x;
            far = d;
            best_dirty = dirty;
        }
    }
    return best;
}

/* Sends v out for op i: its move is after its last use, in the period's
 * ops (the step before, or the period's last step: wrap). */
static void send_out_piece(struct pass *ps, uint32_t v, uint32_t i)
{
    const struct vp_step *s = ps->s;
    uint32_t last = prev_use(ps->u, v, i), n = (uint32_t)s->nops;
    uint32_t step = last < i ? ps->step : (ps->step + ps->q - 1) % ps->q;
    ps->resident[v] = 0;
    ps->left[v] = 1;
    ps->held -= s->bytes[v];
    add_move(ps, step * n + last, v, 1, last >= i && ps->step == 0);
    if (s->dirty && s->dirty[v]) ps->bytes_out += s->bytes[v];
}

/* Brings piece x in for op i, sending out what must leave for room. */
static void bring_in(struct pass *ps, uint32_t x, uint32_t i)
{
    const struct vp_step *s = ps->s;
    while (ps->held + s->bytes[x] > ps->budget) {
        uint32_t v = victim(ps, i);
        if (v == s->npieces) break; /* cannot happen: the table was checked */
        send_out_piece(ps, v, i);
    }
    ps->resident[x] = 1;
    ps->held += s->bytes[x];
    ps->bytes_in += s->bytes[x];
    add_move(ps, ps->step * (uint32_t)s->nops + i, x, 0, 0);
}

static void play_step(struct pass *ps)
{
    const struct vp_step *s = ps->s;
    for (uint32_t i = 0; i < s->nops; i++) {
        const struct vp_step_op *o = &s->ops[i];
        for (uint32_t j = 0; j < o->n; j++) ps->needed[s->touch[o->first + j]] = 1;
        for (uint32_t j = 0; j < o->n; j++) {
            uint32_t x = s->touch[o->first + j];
            if (!ps->resident[x]) bring_in(ps, x, i);
        }
        for (uint32_t j = 0; j < o->n; j++) ps->needed[s->touch[o->first + j]] = 0;
    }
}

static uint64_t state_hash(const uint8_t *r, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t x = 0; x < n; x++) h = (h ^ r[x]) * 0x100000001b3ull;
    return h;
}

/* Plays the loop from nothing resident until a step starts as an earlier
 * one did: *first is that earlier step, the return the period (0: none
 * within VP_PLAN_MAX_STEPS; *first is then the last step played). Every
 * step's starting state is kept in hist (VP_PLAN_MAX_STEPS + 1 of them). */
static unsigned find_period(struct pass *ps, uint8_t *hist, uint64_t *hash, unsigned *first)
{
    size_t n = ps->s->npieces;
    for (unsigned k = 0; k <= VP_PLAN_MAX_STEPS; k++) {
        memcpy(hist + (size_t)k * n, ps->resident, n);
        hash[k] = state_hash(ps->resident, n);
        for (unsigned j = 0; j < k; j++)
            if (hash[j] == hash[k] && !memcmp(hist + (size_t)j * n, ps->resident, n)) {
                *first = j;
                return k - j;
            }
        *first = k;
        if (k < VP_PLAN_MAX_STEPS) play_step(ps);
    }
    return 0;
}

/* Plays q steps from the state start, recording (when p->moves) the moves
 * and what leaves; bytes over them. */
static void play_period(struct pass *ps, const uint8_t *start, unsigned q)
{
    size_t n = ps->s->npieces;
    memcpy(ps->resident, start, n);
    memset(ps->left, 0, n);
    ps->held = 0;
    for (size_t x = 0; x < n; x++) ps->held += start[x] ? ps->s->bytes[x] : 0;
    ps->bytes_in = ps->bytes_out = 0;
    ps->record = 1;
    ps->q = q;
    ps->p->nmoves = 0;
    for (ps->step = 0; ps->step < q; ps->step++) play_step(ps);
}

int vp_plan_step(const struct vp_step *s, uint64_t budget, struct vp_plan *p)
{
    size_t n = s->npieces ? s->npieces : 1;
    uint8_t *scratch = calloc(n, 3), *hist = malloc(n * (VP_PLAN_MAX_STEPS + 1));
    uint64_t *hash = malloc((VP_PLAN_MAX_STEPS + 1) * sizeof *hash);
    struct uses u = {NULL, NULL};
    int rc = scratch && hist && hash ? check_table(s, budget, scratch) : VP_PLAN_BAD_TABLE;
    if (rc == VP_PLAN_OK && uses_make(s, 1, &u)) rc = VP_PLAN_BAD_TABLE;
    struct pass ps = {s, &u, budget, 0, scratch, scratch + n, scratch + 2 * n, p, 0, 1, 0, 0, 0, 0};
    unsigned first = 0, q = rc == VP_PLAN_OK ? find_period(&ps, hist, hash, &first) : 0;
    if (rc == VP_PLAN_OK) {
        /* no period: the average of the last steps played */
        unsigned steps = q ? q : VP_PLAN_AVERAGE_STEPS;
        play_period(&ps, hist + (size_t)first * s->npieces, steps);
        memcpy(p->resident_at_start, hist + (size_t)first * s->npieces, s->npieces);
        for (size_t x = 0; x < s->npieces; x++) p->pinned[x] = p->resident_at_start[x] && !ps.left[x];
        p->period_steps = q;
        p->moves_steps = steps;
        p->steps_to_settle = first;
        p->period_in = ps.bytes_in;
        p->period_out = ps.bytes_out;
        p->bytes_in = ps.bytes_in / steps;
        p->bytes_out = ps.bytes_out / steps;
        if (!q && ps.overflow) p->nmoves = 0; /* not all of them: none */
        if (!q) rc = VP_PLAN_UNSETTLED;
        else if (ps.overflow) rc = VP_PLAN_NO_ROOM;
    }
    uses_free(&u);
    free(scratch);
    free(hist);
    free(hash);
    return rc;
}

/* ---- its time ---- */

/* Room freed at a time (a piece sent out). */
struct freed {
    double t;
    uint64_t bytes;
};

struct sim {
    const struct vp_step *s;
    const struct vp_plan *p;
    const struct vp_bus *b;
    uint64_t budget;
    double *end;         /* per op of the two steps */
    struct freed *ev;    /* room freed, in the order ops end */
    size_t nev;
    double h2d_free, d2h_free;
    uint64_t taken;      /* bytes held at the start, plus every piece brought in so far */
    size_t period;       /* ops of the plan's period */
    struct vp_plan_times *tm; /* NULL: times not asked for */
    uint32_t *by_op, *op_first; /* the moves by op: by_op[op_first[i] .. op_first[i + 1]) */
    size_t kept;         /* the first op (of the plays) whose times are reported */
};

/* Indexes the plan's moves by their op (in their order within one), so
 * each op finds its own without a pass over all. Returns 0, or -1 when out
 * of memory. */
static int index_moves(struct sim *m)
{
    const struct vp_plan *p = m->p;
    m->by_op = malloc((p->nmoves + 1) * sizeof *m->by_op);
    m->op_first = calloc(m->period + 1, sizeof *m->op_first);
    if (!m->by_op || !m->op_first) return -1;
    for (size_t k = 0; k < p->nmoves; k++)
        if (p->moves[k].op < m->period) m->op_first[p->moves[k].op + 1]++;
    for (size_t i = 0; i < m->period; i++) m->op_first[i + 1] += m->op_first[i];
    uint32_t *fill = calloc(m->period + 1, sizeof *fill);
    if (!fill) return -1;
    for (size_t k = 0; k < p->nmoves; k++) {
        uint32_t i = p->moves[k].op;
        if (i < m->period) m->by_op[m->op_first[i] + fill[i]++] = (uint32_t)k;
    }
    free(fill);
    return 0;
}

/* A change of the room held, to the caller's times. */
static void note_event(struct sim *m, double t, int64_t bytes)
{
    if (m->tm && m->tm->events) m->tm->events[m->tm->nevents++] = (struct vp_plan_event){t, bytes};
}

/* Move k of the second play ran from a to b, to the caller's times. */
static void note_move(struct sim *m, size_t g, size_t k, double a, double b)
{
    if (!m->tm || g < m->kept || !m->tm->move_start) return;
    m->tm->move_start[k] = a;
    m->tm->move_end[k] = b;
}

/* The earliest time from t on at which deficit bytes have been freed
 * (events in time order); a negative value when they never are. */
static double room_at(const struct sim *m, double t, int64_t deficit)
{
    if (deficit <= 0) return t;
    uint64_t got = 0;
    for (size_t e = 0; e < m->nev; e++) {
        got += m->ev[e].bytes;
        if (got >= (uint64_t)deficit) return m->ev[e].t > t ? m->ev[e].t : t;
    }
    return -1;
}

/* Room freed at t, kept in time order (they come nearly in order). */
static void freed_at(struct sim *m, double t, uint64_t bytes)
{
    note_event(m, t, -(int64_t)bytes);
    size_t e = m->nev++;
    while (e > 0 && m->ev[e - 1].t > t) {
        m->ev[e] = m->ev[e - 1];
        e--;
    }
    m->ev[e] = (struct freed){t, bytes};
}

/* The op (of the two steps) running at time t, counted from the second
 * step's first. */
static int32_t op_at(const struct sim *m, size_t done, double t)
{
    size_t g = 0;
    while (g < done && m->end[g] <= t) g++;
    return (int32_t)g - (int32_t)m->kept;
}

/* The moves in before op g (of the two steps), as early as the bus and the
 * room allow; returns when the last of them arrives, or a negative value. */
static double bring_all(struct sim *m, size_t g, int32_t *lead)
{
    const struct vp_plan *p = m->p;
    uint32_t i = (uint32_t)(g % m->period);
    double arrive = 0;
    for (uint32_t j = m->op_first[i]; j < m->op_first[i + 1]; j++) {
        uint32_t k = m->by_op[j];
        if (p->moves[k].out) continue;
        uint64_t bytes = m->s->bytes[p->moves[k].piece];
        double t = room_at(m, m->h2d_free, (int64_t)(m->taken + bytes) - (int64_t)m->budget);
        if (t < 0) return -1;
        if (lead && g >= m->kept) lead[k] = op_at(m, g, t);
        m->h2d_free = t + (double)bytes / m->b->h2d + (double)bytes * m->b->remap;
        m->taken += bytes;
        note_event(m, t, (int64_t)bytes);
        note_move(m, g, k, t, m->h2d_free);
        if (m->h2d_free > arrive) arrive = m->h2d_free;
    }
    return arrive;
}

/* The moves out after op g: their room frees at its end, or once copied back. */
static void send_out(struct sim *m, size_t g, int32_t *lead)
{
    const struct vp_plan *p = m->p;
    uint32_t i = (uint32_t)(g % m->period);
    for (uint32_t j = m->op_first[i]; j < m->op_first[i + 1]; j++) {
        uint32_t k = m->by_op[j];
        if (!p->moves[k].out || (p->moves[k].wrap && !m->kept)) continue;
        uint32_t x = p->moves[k].piece;
        double t = m->end[g];
        if (m->s->dirty && m->s->dirty[x]) {
            m->d2h_free = (m->d2h_free > t ? m->d2h_free : t) + (double)m->s->bytes[x] / m->b->d2h;
            t = m->d2h_free;
        }
        freed_at(m, t, m->s->bytes[x]);
        note_move(m, g, k, m->end[g], t);
        if (lead && g >= m->kept) lead[k] = (int32_t)i;
    }
}

void vp_plan_free(struct vp_plan *p)
{
    free(p->moves);
    free(p->resident_at_start);
    free(p->pinned);
}

size_t vp_plan_ops(const struct vp_step *s, const struct vp_plan *p)
{
    return (p->moves_steps ? p->moves_steps : 1) * s->nops;
}

static int by_time_frees_first(const void *a, const void *b)
{
    const struct vp_plan_event *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return (x->bytes > 0) - (y->bytes > 0);
}

void vp_plan_sort_events(struct vp_plan_times *tm)
{
    qsort(tm->events, tm->nevents, sizeof *tm->events, by_time_frees_first);
}

double vp_plan_simulate(const struct vp_step *s, uint64_t budget, const struct vp_plan *p,
                        const struct vp_bus *b, int32_t *lead)
{
    return vp_plan_times(s, budget, p, b, lead, NULL);
}

double vp_plan_times(const struct vp_step *s, uint64_t budget, const struct vp_plan *p, const struct vp_bus *b,
                     int32_t *lead, struct vp_plan_times *tm)
{
    /* a period plays twice, the second play the steady state; steps with
     * no period (they do not end as they began) play once, their first
     * step the warm-up */
    size_t n = vp_plan_ops(s, p), plays = p->period_steps ? 2 : 1;
    size_t kept = plays == 2 ? n : 0, from = plays == 2 ? n : s->nops;
    struct sim m = {s, p, b, budget, malloc(plays * n * sizeof(double)),
                    malloc((3 * p->nmoves + 1) * sizeof(struct freed)), 0, 0, 0, 0, n, tm, NULL, NULL, kept};
    double result = -1;
    if (index_moves(&m)) goto out;
    for (size_t x = 0; x < s->npieces; x++)
        if (p->resident_at_start[x]) m.taken += s->bytes[x];
    if (tm) {
        tm->nevents = 0;
        tm->held_at_start = m.taken;
    }
    /* pieces the period before sent out for this one's ops: free at its end
     * (played once, that is all: their moves stand for the steps before) */
    for (size_t k = 0; m.ev && k < p->nmoves; k++)
        if (p->moves[k].out && p->moves[k].wrap) freed_at(&m, 0, s->bytes[p->moves[k].piece]);
    for (size_t g = 0; m.end && m.ev && g < plays * n; g++) {
        double arrive = bring_all(&m, g, lead);
        if (arrive < 0) goto out;
        double start = g ? m.end[g - 1] : 0;
        if (arrive > start) start = arrive;
        m.end[g] = start + s->ops[g % s->nops].dur_s;
        if (tm && g >= kept && tm->op_start) {
            tm->op_start[g - kept] = start;
            tm->op_end[g - kept] = m.end[g];
        }
        send_out(&m, g, lead);
    }
    if (m.end && m.ev && plays * n > from) {
        result = (m.end[plays * n - 1] - m.end[from - 1]) / (double)((plays * n - from) / s->nops);
        if (tm) {
            tm->begin = m.end[from - 1];
            tm->end = m.end[plays * n - 1];
        }
    }
out:
    free(m.end);
    free(m.ev);
    free(m.by_op);
    free(m.op_first);
    return result;
}
