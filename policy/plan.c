/* plan.c - see plan.h. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PASSES 16 /* passes of a period before it counts as unsettled */
#define MAX_PERIOD VP_PLAN_MAX_PERIOD

size_t vp_plan_period(const uint64_t *ids, size_t n, unsigned reps)
{
    if (reps < 2 || n < reps) return 0;
    for (size_t p = 1; p <= n / reps; p++) {
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

/* ---- one pass of the loop under Belady's rule ---- */

struct pass {
    const struct vp_step *s;
    size_t nops;              /* of the plan's period: q steps */
    const struct uses *u;
    uint64_t budget, held;
    uint8_t *resident, *needed; /* per piece */
    struct vp_plan *p;
    int overflow;
};

static void add_move(struct pass *ps, uint32_t op, uint32_t piece, int out, int wrap)
{
    struct vp_plan *p = ps->p;
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
        uint64_t d = next_use(ps->u, ps->nops, x, i);
        int dirty = s->dirty && s->dirty[x];
        if (best == s->npieces || d > far || (d == far && best_dirty && !dirty)) {
            best = x;
            far = d;
            best_dirty = dirty;
        }
    }
    return best;
}

/* Brings piece x in for op i, sending out what must leave for room. */
static void bring_in(struct pass *ps, uint32_t x, uint32_t i)
{
    const struct vp_step *s = ps->s;
    while (ps->held + s->bytes[x] > ps->budget) {
        uint32_t v = victim(ps, i);
        if (v == s->npieces) break; /* cannot happen: the table was checked */
        ps->resident[v] = 0;
        ps->held -= s->bytes[v];
        uint32_t last = prev_use(ps->u, v, i);
        add_move(ps, last, v, 1, last > i);
        if (s->dirty && s->dirty[v]) ps->p->bytes_out += s->bytes[v];
    }
    ps->resident[x] = 1;
    ps->held += s->bytes[x];
    ps->p->bytes_in += s->bytes[x];
    add_move(ps, i, x, 0, 0);
}

static void run_pass(struct pass *ps)
{
    const struct vp_step *s = ps->s;
    ps->p->nmoves = 0;
    ps->p->bytes_in = ps->p->bytes_out = 0;
    for (uint32_t i = 0; i < ps->nops; i++) {
        const struct vp_step_op *o = &s->ops[i % s->nops];
        for (uint32_t j = 0; j < o->n; j++) ps->needed[s->touch[o->first + j]] = 1;
        for (uint32_t j = 0; j < o->n; j++) {
            uint32_t x = s->touch[o->first + j];
            if (!ps->resident[x]) bring_in(ps, x, i);
        }
        for (uint32_t j = 0; j < o->n; j++) ps->needed[s->touch[o->first + j]] = 0;
    }
}

/* Pinned: resident at the start and never sent out in the pass. */
static void mark_pinned(const struct vp_step *s, struct vp_plan *p)
{
    memcpy(p->pinned, p->resident_at_start, s->npieces);
    for (size_t k = 0; k < p->nmoves; k++)
        if (p->moves[k].out || !p->resident_at_start[p->moves[k].piece]) p->pinned[p->moves[k].piece] = 0;
}

/* Plays the loop in periods of q steps until one starts as the one before
 * it did. Returns VP_PLAN_OK, VP_PLAN_UNSETTLED or VP_PLAN_NO_ROOM. */
static int settle(const struct vp_step *s, uint64_t budget, unsigned q, uint8_t *resident, struct vp_plan *p)
{
    struct uses u = {NULL, NULL};
    if (uses_make(s, q, &u)) {
        uses_free(&u);
        return VP_PLAN_BAD_TABLE;
    }
    memset(resident, 0, 2 * s->npieces);
    struct pass ps = {s, q * s->nops, &u, budget, 0, resident, resident + s->npieces, p, 0};
    int rc = VP_PLAN_UNSETTLED;
    for (unsigned k = 0; k < MAX_PASSES && rc == VP_PLAN_UNSETTLED; k++) {
        memcpy(p->resident_at_start, resident, s->npieces);
        run_pass(&ps);
        if (ps.overflow) rc = VP_PLAN_NO_ROOM;
        else if (!memcmp(p->resident_at_start, resident, s->npieces)) {
            p->steps_to_settle = (k + 1) * q;
            rc = VP_PLAN_OK;
        }
    }
    uses_free(&u);
    return rc;
}

int vp_plan_step(const struct vp_step *s, uint64_t budget, struct vp_plan *p)
{
    uint8_t *resident = calloc(s->npieces ? s->npieces : 1, 2);
    int rc = resident ? check_table(s, budget, resident) : VP_PLAN_BAD_TABLE;
    for (unsigned q = 1; rc == VP_PLAN_OK; q++) {
        if (q > MAX_PERIOD) {
            rc = VP_PLAN_UNSETTLED;
            break;
        }
        p->period_steps = q;
        rc = settle(s, budget, q, resident, p);
        if (rc != VP_PLAN_UNSETTLED) break;
        rc = VP_PLAN_OK; /* try a longer period */
    }
    if (rc == VP_PLAN_OK) {
        mark_pinned(s, p);
        p->period_in = p->bytes_in;
        p->period_out = p->bytes_out;
        p->bytes_in /= p->period_steps;
        p->bytes_out /= p->period_steps;
    }
    free(resident);
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
};

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
    return (int32_t)g - (int32_t)m->period;
}

/* The moves in before op g (of the two steps), as early as the bus and the
 * room allow; returns when the last of them arrives, or a negative value. */
static double bring_all(struct sim *m, size_t g, int32_t *lead)
{
    const struct vp_plan *p = m->p;
    uint32_t i = (uint32_t)(g % m->period);
    double arrive = 0;
    for (size_t k = 0; k < p->nmoves; k++) {
        if (p->moves[k].out || p->moves[k].op != i) continue;
        uint64_t bytes = m->s->bytes[p->moves[k].piece];
        double t = room_at(m, m->h2d_free, (int64_t)(m->taken + bytes) - (int64_t)m->budget);
        if (t < 0) return -1;
        if (lead && g >= m->period) lead[k] = op_at(m, g, t);
        m->h2d_free = t + (double)bytes / m->b->h2d;
        m->taken += bytes;
        if (m->h2d_free > arrive) arrive = m->h2d_free;
    }
    return arrive;
}

/* The moves out after op g: their room frees at its end, or once copied back. */
static void send_out(struct sim *m, size_t g, int32_t *lead)
{
    const struct vp_plan *p = m->p;
    uint32_t i = (uint32_t)(g % m->period);
    for (size_t k = 0; k < p->nmoves; k++) {
        if (!p->moves[k].out || p->moves[k].op != i) continue;
        uint32_t x = p->moves[k].piece;
        double t = m->end[g];
        if (m->s->dirty && m->s->dirty[x]) {
            m->d2h_free = (m->d2h_free > t ? m->d2h_free : t) + (double)m->s->bytes[x] / m->b->d2h;
            t = m->d2h_free;
        }
        freed_at(m, t, m->s->bytes[x]);
        if (lead && g >= m->period) lead[k] = (int32_t)i;
    }
}

double vp_plan_simulate(const struct vp_step *s, uint64_t budget, const struct vp_plan *p,
                        const struct vp_bus *b, int32_t *lead)
{
    size_t n = (p->period_steps ? p->period_steps : 1) * s->nops;
    struct sim m = {s, p, b, budget, malloc(2 * n * sizeof(double)), malloc((3 * p->nmoves + 1) * sizeof(struct freed)),
                    0, 0, 0, 0, n};
    double result = -1;
    for (size_t x = 0; x < s->npieces; x++)
        if (p->resident_at_start[x]) m.taken += s->bytes[x];
    /* pieces the period before sent out for this one's ops: free at its end */
    for (size_t k = 0; m.ev && k < p->nmoves; k++)
        if (p->moves[k].out && p->moves[k].wrap) freed_at(&m, 0, s->bytes[p->moves[k].piece]);
    for (size_t g = 0; m.end && m.ev && g < 2 * n; g++) {
        double arrive = bring_all(&m, g, lead);
        if (arrive < 0) goto out;
        double start = g ? m.end[g - 1] : 0;
        m.end[g] = (arrive > start ? arrive : start) + s->ops[g % s->nops].dur_s;
        send_out(&m, g, lead);
    }
    if (m.end && m.ev) result = (m.end[2 * n - 1] - m.end[n - 1]) / (double)(n / s->nops);
out:
    free(m.end);
    free(m.ev);
    return result;
}
