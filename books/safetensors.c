/* safetensors.c - see safetensors.h. A small JSON reader for exactly this
 * schema: iterative value skipping with a depth bound, every read checked
 * against the end of the buffer. */
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

struct rd {
    const char *p, *end;
    const char *why;
};

static int fail(struct rd *r, const char *why)
{
    if (!r->why) r->why = why;
    return -1;
}

static void ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int expect(struct rd *r, char c)
{
    ws(r);
    if (r->p >= r->end || *r->p != c) return fail(r, "malformed JSON");
    r->p++;
    return 0;
}

static int peek(struct rd *r, char c)
{
    ws(r);
    return r->p < r->end && *r->p == c;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(struct rd *r, unsigned *out)
{
    if (r->end - r->p < 4) return fail(r, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(r->p[i]);
        if (h < 0) return fail(r, "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    r->p += 4;
    *out = v;
    return 0;
}

/* Reads a string. With out != NULL, decodes it into out (room for cap
 * bytes including the NUL) and stores its length in *outlen. */
static int string(struct rd *r, char *out, size_t cap, size_t *outlen)
{
    if (expect(r, '"')) return -1;
    size_t n = 0;
    for (;;) {
        if (r->p >= r->end) return fail(r, "unterminated string");
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"') break;
        if (c < 0x20) return fail(r, "control character in string");
        unsigned cp = c;
        char buf[4];
        size_t k = 1;
        buf[0] = (char)c;
        if (c == '\\') {
            if (r->p >= r->end) return fail(r, "unterminated string");
            char e = *r->p++;
            switch (e) {
            case '"': case '\\': case '/': buf[0] = e; break;
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            case 'u':
                if (hex4(r, &cp)) return -1;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') return fail(r, "lone surrogate");
                    r->p += 2;
                    if (hex4(r, &lo)) return -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) return fail(r, "bad surrogate pair");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return fail(r, "lone surrogate");
                }
                if (cp == 0) return fail(r, "NUL in string");
                if (cp < 0x80) { buf[0] = (char)cp; k = 1; }
                else if (cp < 0x800) { buf[0] = (char)(0xC0 | cp >> 6); buf[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
                else if (cp < 0x10000) {
                    buf[0] = (char)(0xE0 | cp >> 12); buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    buf[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
                } else {
                    buf[0] = (char)(0xF0 | cp >> 18); buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
                }
                break;
            default: return fail(r, "bad escape");
            }
        }
        if (out) {
            if (n + k >= cap) return fail(r, "string too long");
            memcpy(out + n, buf, k);
        }
        n += k;
    }
    if (out) {
        out[n] = '\0';
        *outlen = n;
    }
    return 0;
}

static int number(struct rd *r, uint64_t *out)
{
    ws(r);
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return fail(r, "expected a non-negative integer");
    if (*r->p == '0' && r->end - r->p > 1 && r->p[1] >= '0' && r->p[1] <= '9') return fail(r, "leading zero");
    uint64_t v = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p++ - '0');
        if (v > (UINT64_MAX - d) / 10) return fail(r, "integer too large");
        v = v * 10 + d;
    }
    if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E')) return fail(r, "expected an integer");
    *out = v;
    return 0;
}

/* Skips any JSON value, iteratively, with nesting bounded by
 * VP_ST_MAX_DEPTH. */
static int skip_value(struct rd *r)
{
    char stack[VP_ST_MAX_DEPTH];
    int depth = 0;
    for (;;) {
        ws(r);
        if (r->p >= r->end) return fail(r, "truncated JSON");
        char c = *r->p;
        if (c == '{' || c == '[') {
            if (depth == VP_ST_MAX_DEPTH) return fail(r, "JSON nested too deep");
            stack[depth++] = c == '{' ? '}' : ']';
            r->p++;
            if (peek(r, stack[depth - 1])) {
                r->p++;
                depth--;
                goto after_value;
            }
            if (stack[depth - 1] == '}') {
                if (string(r, NULL, 0, NULL) || expect(r, ':')) return -1;
            }
            continue;
        }
        if (c == '"') {
            if (string(r, NULL, 0, NULL)) return -1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (c == '-') r->p++;
            const char *s = r->p;
            while (r->p < r->end && ((*r->p >= '0' && *r->p <= '9') || *r->p == '.' || *r->p == 'e' ||
                                     *r->p == 'E' || *r->p == '+' || *r->p == '-'))
                r->p++;
            if (r->p == s) return fail(r, "malformed number");
        } else if (r->end - r->p >= 4 && (!memcmp(r->p, "true", 4) || !memcmp(r->p, "null", 4))) {
            r->p += 4;
        } else if (r->end - r->p >= 5 && !memcmp(r->p, "false", 5)) {
            r->p += 5;
        } else {
            return fail(r, "malformed JSON value");
        }
    after_value:
        for (;;) {
            if (!depth) return 0;
            ws(r);
            if (r->p >= r->end) return fail(r, "truncated JSON");
            if (*r->p == ',') {
                r->p++;
                if (stack[depth - 1] == '}') {
                    if (string(r, NULL, 0, NULL) || expect(r, ':')) return -1;
                }
                break; /* next value */
            }
            if (*r->p != stack[depth - 1]) return fail(r, "malformed JSON");
            r->p++;
            depth--;
        }
    }
}

static uint64_t dtype_size(const char *d)
{
    static const struct { const char *n; uint64_t s; } t[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
        {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
        {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(d, t[i].n)) return t[i].s;
    return 0; /* unknown (newer sub-byte types): size not checked */
}

/* One tensor entry's object. */
static int tensor(struct rd *r, struct vp_st_tensor *t, uint64_t data_len)
{
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (expect(r, '{')) return -1;
    if (peek(r, '}')) return fail(r, "empty tensor entry");
    do {
        char key[32];
        size_t klen;
        if (string(r, key, sizeof key, &klen) || expect(r, ':')) return -1;
        if (!strcmp(key, "dtype")) {
            size_t n;
            if (have_dtype++ || string(r, t->dtype, sizeof t->dtype, &n)) return fail(r, "bad dtype");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++ || expect(r, '[')) return fail(r, "bad shape");
            t->ndim = 0;
            if (!peek(r, ']')) {
                do {
                    if (t->ndim == VP_ST_MAX_DIMS) return fail(r, "too many dimensions");
                    if (number(r, &t->shape[t->ndim++])) return -1;
                } while (peek(r, ',') && (r->p++, 1));
            }
            if (expect(r, ']')) return -1;
        } else if (!strcmp(key, "data_offsets")) {
            if (have_off++ || expect(r, '[') || number(r, &t->begin) || expect(r, ',') || number(r, &t->end) ||
                expect(r, ']'))
                return fail(r, "bad data_offsets");
        } else {
            return fail(r, "unknown key in a tensor entry");
        }
    } while (peek(r, ',') && (r->p++, 1));
    if (expect(r, '}')) return -1;
    if (!have_dtype || !have_shape || !have_off) return fail(r, "tensor entry lacks dtype, shape or data_offsets");
    if (t->begin > t->end || t->end > data_len) return fail(r, "data_offsets outside the data");
    uint64_t es = dtype_size(t->dtype);
    if (es) {
        uint64_t n = es;
        for (uint32_t i = 0; i < t->ndim; i++) {
            if (t->shape[i] && n > UINT64_MAX / t->shape[i]) return fail(r, "shape too large");
            n *= t->shape[i];
        }
        if (n != t->end - t->begin) return fail(r, "shape and dtype disagree with data_offsets");
    }
    return 0;
}

static int by_begin(const void *a, const void *b)
{
    const struct vp_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const struct vp_st_tensor *const *)a)->name, (*(const struct vp_st_tensor *const *)b)->name);
}

int vp_st_parse(const char *json, size_t len, uint64_t data_len, struct vp_st_file *out, const char **why)
{
    memset(out, 0, sizeof *out);
    struct rd r = {json, json + len, NULL};
    size_t cap = 0, n = 0, arena_used = 0;
    struct vp_st_tensor *t = NULL;
    char *arena = NULL;
    if (len > VP_ST_MAX_HEADER) { *why = "header larger than 100 MiB"; return -1; }
    /* names are shorter than the header: one arena of len + 1 holds them all */
    arena = malloc(len + 1);
    if (!arena) { *why = "out of memory"; return -1; }
    if (expect(&r, '{')) goto bad;
    if (!peek(&r, '}')) {
        do {
            size_t klen;
            if (string(&r, arena + arena_used, len + 1 - arena_used, &klen) || expect(&r, ':')) goto bad;
            if (!strcmp(arena + arena_used, "__metadata__")) {
                if (skip_value(&r)) goto bad;
                continue;
            }
            if (n == VP_ST_MAX_TENSORS) { fail(&r, "too many tensors"); goto bad; }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                struct vp_st_tensor *nt = realloc(t, ncap * sizeof *t);
                if (!nt) { fail(&r, "out of memory"); goto bad; }
                t = nt;
                cap = ncap;
            }
            memset(&t[n], 0, sizeof t[n]);
            t[n].name = (const char *)(uintptr_t)arena_used; /* an offset until the arena is final */
            arena_used += klen + 1;
            if (tensor(&r, &t[n], data_len)) goto bad;
            n++;
        } while (peek(&r, ',') && (r.p++, 1));
    }
    if (expect(&r, '}')) goto bad;
    ws(&r);
    if (r.p != r.end) { fail(&r, "trailing bytes after the header object"); goto bad; }
    for (size_t i = 0; i < n; i++) t[i].name = arena + (uintptr_t)t[i].name;
    if (n > 1) qsort(t, n, sizeof *t, by_begin);
    for (size_t i = 1; i < n; i++)
        if (t[i].begin < t[i - 1].end) { fail(&r, "tensors overlap"); goto bad; }
    if (n > 1) { /* duplicate names */
        const struct vp_st_tensor **idx = malloc(n * sizeof *idx);
        if (!idx) { fail(&r, "out of memory"); goto bad; }
        for (size_t i = 0; i < n; i++) idx[i] = &t[i];
        qsort(idx, n, sizeof *idx, by_name);
        int dup = 0;
        for (size_t i = 1; i < n && !dup; i++) dup = !strcmp(idx[i]->name, idx[i - 1]->name);
        free(idx);
        if (dup) { fail(&r, "a tensor name appears twice"); goto bad; }
    }
    out->data_start = 8 + (uint64_t)len;
    for (size_t i = 0; i < n; i++) {
        t[i].begin += out->data_start;
        t[i].end += out->data_start;
    }
    out->ntensors = n;
    out->t = t;
    out->names = arena;
    return 0;
bad:
    *why = r.why ? r.why : "malformed header";
    free(t);
    free(arena);
    return -1;
}

const struct vp_st_tensor *vp_st_find(const struct vp_st_file *f, uint64_t off)
{
    size_t lo = 0, hi = f->ntensors;
    while (lo < hi) { /* first tensor with end > off */
        size_t mid = lo + (hi - lo) / 2;
        if (f->t[mid].end <= off) lo = mid + 1;
        else hi = mid;
    }
    if (lo < f->ntensors && f->t[lo].begin <= off && off < f->t[lo].end) return &f->t[lo];
    return NULL;
}

void vp_st_free(struct vp_st_file *f)
{
    free(f->t);
    free(f->names);
    memset(f, 0, sizeof *f);
}
