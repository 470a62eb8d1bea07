/* table.c - see table.h. */
#include "table.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv(uint64_t h, uint64_t v, int bytes)
{
    for (int b = 0; b < bytes; b++) h = (h ^ ((v >> (8 * b)) & 0xff)) * 0x100000001b3ull;
    return h;
}

uint64_t vp_table_fingerprint(const struct vp_table *t)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t a = 0; a < t->nallocs; a++) {
        h = fnv(h, t->alloc_bytes[a], 8);
        if (t->version >= 2) h = fnv(h, t->alloc_order[a], 4);
    }
    for (size_t k = 0; k < t->nkernels; k++)
        for (const char *c = t->kernel[k];; c++) {
            h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
            if (!*c) break;
        }
    return h;
}

uint64_t vp_table_pieces(const struct vp_table *t, uint32_t a)
{
    return t->piece ? t->alloc_bytes[a] / t->piece + (t->alloc_bytes[a] % t->piece != 0) : 0;
}

void vp_table_free(struct vp_table *t)
{
    free(t->alloc_bytes);
    free(t->alloc_order);
    free(t->kernel);
    free(t->ops);
    free(t->spans);
    memset(t, 0, sizeof *t);
}

/* ---- reading ---- */

struct parse {
    const char *p, *end;     /* what is left of the text */
    const char *at, *eol;    /* the current line, from the field being read */
    const char *why;
    struct vp_table *t;
    size_t cap_alloc, cap_order, cap_kernel, cap_op, cap_span;
};

#define FAIL(c, reason) ((c)->why = (c)->why ? (c)->why : (reason), -1)

/* The next line (without its '\n'). Returns 0, or -1 at the end of the
 * text or on a line without its '\n'. */
static int next_line(struct parse *c)
{
    if (c->p >= c->end) return FAIL(c, "the table is cut short (no end line)");
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    if (!nl) return FAIL(c, "a line is cut short (no newline)");
    c->at = c->p;
    c->eol = nl;
    c->p = nl + 1;
    return 0;
}

/* The word w at the line's start, then a space or the line's end: moves
 * past it. Returns 0, or -1 (nothing moved). */
static int word(struct parse *c, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(c->eol - c->at) < n || memcmp(c->at, w, n)) return -1;
    if (c->at + n < c->eol && c->at[n] != ' ') return -1;
    c->at += n + (c->at + n < c->eol);
    return 0;
}

/* A decimal number up to max, ended by stop (moved past), a space (moved
 * past) or the line's end. */
static int number(struct parse *c, uint64_t max, char stop, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = c->at;
    for (; c->at < c->eol && *c->at >= '0' && *c->at <= '9'; c->at++) {
        unsigned d = (unsigned)(*c->at - '0');
        if (d > max || v > (max - d) / 10) return FAIL(c, "a number is too large");
        v = v * 10 + d;
    }
    if (c->at == s) return FAIL(c, "a number is missing");
    if (c->at < c->eol && (*c->at == stop || *c->at == ' ')) c->at++;
    else if (c->at < c->eol) return FAIL(c, "a field is malformed");
    if (c->at == c->eol && c->at[-1] == ' ') return FAIL(c, "a field is malformed (a space ends the line)");
    *out = v;
    return 0;
}

/* The line is done: nothing may follow. */
static int line_end(struct parse *c) { return c->at == c->eol ? 0 : FAIL(c, "a line has more fields than it should"); }

/* Makes room for n + 1 items in a parsed array. */
static int room(struct parse *c, void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, nc * size);
    if (!p) return FAIL(c, "out of memory");
    *arr = p;
    *cap = nc;
    return 0;
}

static int hex16(struct parse *c, uint64_t *out)
{
    uint64_t v = 0;
    if (c->eol - c->at != 16) return FAIL(c, "no fingerprint");
    for (int i = 0; i < 16; i++) {
        char h = c->at[i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1;
        if (d < 0) return FAIL(c, "no fingerprint");
        v = v << 4 | (uint64_t)d;
    }
    c->at = c->eol;
    *out = v;
    return 0;
}

static int header(struct parse *c)
{
    uint64_t v;
    struct vp_table *t = c->t;
    if (next_line(c) || word(c, "vpage-table") || number(c, UINT32_MAX, ' ', &v) || line_end(c)) {
        c->why = "not a vpage table";
        return -1;
    }
    if (v != 1 && v != VP_TABLE_VERSION) return FAIL(c, "a table of another version");
    t->version = (unsigned)v;
    if (next_line(c) || word(c, "fingerprint") || hex16(c, &t->fingerprint)) return FAIL(c, "no fingerprint");
    if (next_line(c) || word(c, "piece") || number(c, UINT64_MAX, ' ', &t->piece) || line_end(c) || !t->piece)
        return FAIL(c, "no piece size");
    return 0;
}

static int one_alloc(struct parse *c)
{
    struct vp_table *t = c->t;
    uint64_t most = t->piece > UINT64_MAX / VP_TABLE_MAX_PIECES ? UINT64_MAX : t->piece * VP_TABLE_MAX_PIECES, b;
    uint64_t order = t->nallocs;
    if (t->nallocs == VP_TABLE_MAX_ALLOCS) return FAIL(c, "too many allocations");
    if (number(c, most, ' ', &b) || !b) return FAIL(c, "an allocation is malformed");
    if (t->version >= 2) {
        if (c->at == c->eol) return FAIL(c, "an allocation's order is missing");
        if (number(c, UINT32_MAX, ' ', &order)) return -1;
        if (t->nallocs && order <= t->alloc_order[t->nallocs - 1])
            return FAIL(c, "an allocation's order is not after the one before");
    }
    if (line_end(c)) return FAIL(c, "an allocation is malformed");
    if (room(c, (void **)&t->alloc_bytes, t->nallocs, &c->cap_alloc, sizeof *t->alloc_bytes) ||
        room(c, (void **)&t->alloc_order, t->nallocs, &c->cap_order, sizeof *t->alloc_order))
        return -1;
    t->alloc_order[t->nallocs] = (uint32_t)order;
    t->alloc_bytes[t->nallocs++] = b;
    return 0;
}

static int one_kernel(struct parse *c)
{
    struct vp_table *t = c->t;
    size_t n = (size_t)(c->eol - c->at);
    if (t->nkernels == VP_TABLE_MAX_KERNELS) return FAIL(c, "too many kernels");
    if (!n || n >= VP_TABLE_NAME) return FAIL(c, "a kernel name is empty or too long");
    for (size_t i = 0; i < n; i++)
        if (!vp_table_name_byte((unsigned char)c->at[i]))
            return FAIL(c, "a kernel name is not printable ASCII without spaces");
    if (room(c, (void **)&t->kernel, t->nkernels, &c->cap_kernel, sizeof *t->kernel)) return -1;
    memcpy(t->kernel[t->nkernels], c->at, n);
    t->kernel[t->nkernels++][n] = '\0';
    c->at = c->eol;
    return 0;
}

/* One span "A:F-L" or "A:F-Lw" of an op. */
static int one_span(struct parse *c)
{
    struct vp_table *t = c->t;
    uint64_t a, f, l;
    if (number(c, UINT32_MAX, ':', &a)) return FAIL(c, "a span is malformed");
    if (a >= t->nallocs) return FAIL(c, "a span names an allocation the table does not have");
    uint64_t last = vp_table_pieces(t, (uint32_t)a) - 1;
    if (c->at > c->eol || c->at[-1] != ':' || number(c, last, '-', &f) || c->at[-1] != '-')
        return FAIL(c, "a span is malformed");
    int w = 0;
    const char *s = c->at;
    uint64_t v = 0;
    for (; c->at < c->eol && *c->at >= '0' && *c->at <= '9'; c->at++) {
        v = v * 10 + (uint64_t)(*c->at - '0');
        if (v > last) return FAIL(c, "a span is past its allocation");
    }
    if (c->at == s || v < f) return FAIL(c, "a span is malformed");
    if (c->at < c->eol && *c->at == 'w') w = 1, c->at++;
    if (c->at < c->eol && (*c->at++ != ' ' || c->at == c->eol)) return FAIL(c, "a span is malformed");
    l = v;
    if (room(c, (void **)&t->spans, t->nspans, &c->cap_span, sizeof *t->spans)) return -1;
    t->spans[t->nspans++] = (struct vp_table_span){(uint32_t)a, (uint32_t)f, (uint32_t)l, (uint8_t)w};
    return 0;
}

static int one_op(struct parse *c)
{
    struct vp_table *t = c->t;
    uint64_t k, ns;
    if (t->nops == VP_TABLE_MAX_OPS) return FAIL(c, "too many launches");
    if (number(c, UINT32_MAX, ' ', &k) || number(c, UINT64_MAX, ' ', &ns)) return FAIL(c, "a launch is malformed");
    if (k >= t->nkernels) return FAIL(c, "a launch names a kernel the table does not have");
    if (room(c, (void **)&t->ops, t->nops, &c->cap_op, sizeof *t->ops)) return -1;
    struct vp_table_op *o = &t->ops[t->nops];
    *o = (struct vp_table_op){(uint32_t)k, ns, (uint32_t)t->nspans, 0};
    while (c->at < c->eol) {
        if (o->nspans == VP_TABLE_MAX_SPANS) return FAIL(c, "a launch has too many spans");
        if (one_span(c)) return -1;
        o->nspans++;
    }
    t->nops++;
    return 0;
}

/* The lines of one key in a row, each through one(); c->p is left at the
 * first line of another key. */
static int lines_of(struct parse *c, const char *key, int (*one)(struct parse *))
{
    for (;;) {
        const char *back = c->p;
        if (next_line(c)) return -1;
        if (word(c, key)) {
            c->p = back;
            return 0;
        }
        if (one(c)) return -1;
    }
}

static int body(struct parse *c)
{
    const char *back = c->p;
    uint64_t v;
    if (next_line(c)) return -1;
    if (!word(c, "other")) {
        if (number(c, UINT64_MAX, ' ', &v) || line_end(c)) return FAIL(c, "the other line is malformed");
        c->t->other = v;
    } else {
        c->p = back;
    }
    if (lines_of(c, "alloc", one_alloc) || lines_of(c, "kernel", one_kernel) || lines_of(c, "op", one_op)) return -1;
    if (next_line(c) || word(c, "end") || line_end(c)) return FAIL(c, "an unknown line, or no end line");
    if (c->p != c->end) return FAIL(c, "text after the end line");
    if (!c->t->nops) return FAIL(c, "a step of no launches");
    return 0;
}

int vp_table_parse(const char *text, size_t len, struct vp_table *t, const char **why)
{
    memset(t, 0, sizeof *t);
    struct parse c = {.p = text, .end = text + len, .t = t};
    if (!text || header(&c) || body(&c)) {
        *why = c.why ? c.why : "not a vpage table";
        vp_table_free(t);
        return -1;
    }
    if (vp_table_fingerprint(t) != t->fingerprint) {
        *why = "its fingerprint is not that of its allocations and kernels";
        vp_table_free(t);
        return -1;
    }
    return 0;
}

/* ---- writing ---- */

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t left = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(left ? o->p + o->len : NULL, left, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

size_t vp_table_write(const struct vp_table *t, char *buf, size_t len)
{
    struct out o = {buf, 0, len};
    put(&o, "vpage-table %u\nfingerprint %016llx\npiece %llu\n", t->version, (unsigned long long)t->fingerprint,
        (unsigned long long)t->piece);
    if (t->other) put(&o, "other %llu\n", (unsigned long long)t->other);
    for (size_t a = 0; a < t->nallocs; a++) {
        put(&o, "alloc %llu", (unsigned long long)t->alloc_bytes[a]);
        put(&o, t->version >= 2 ? " %u\n" : "\n", t->alloc_order[a]);
    }
    for (size_t k = 0; k < t->nkernels; k++) put(&o, "kernel %s\n", t->kernel[k]);
    for (size_t i = 0; i < t->nops; i++) {
        const struct vp_table_op *op = &t->ops[i];
        put(&o, "op %u %llu", op->kernel, (unsigned long long)op->dur_ns);
        for (uint32_t j = 0; j < op->nspans; j++) {
            const struct vp_table_span *s = &t->spans[op->first_span + j];
            put(&o, " %u:%u-%u%s", s->alloc, s->first, s->last, s->write ? "w" : "");
        }
        put(&o, "\n");
    }
    put(&o, "end\n");
    if (len) buf[o.len < len ? o.len : len - 1] = '\0';
    return o.len;
}
