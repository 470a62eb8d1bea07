/* options.c - parse vpage's option table (see options.h). */
#define _GNU_SOURCE
#include "options.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "vp.h"

enum vp_opt_type { T_SIZE, T_BOOL, T_LEVEL, T_STRING, T_CAP, T_CHOICE };

struct vp_optdef {
    const char *env;
    enum vp_opt_type type;
    const char *def;
    const char *doc;
};

enum {
#define VP_X(NAME, field, type, def, doc) OPT_##NAME,
    VP_OPTIONS(VP_X)
#undef VP_X
    OPT_COUNT
};

static const struct vp_optdef defs[] = {
#define VP_X(NAME, field, type, def, doc) {"VPAGE_" #NAME, T_##type, def, doc},
    VP_OPTIONS(VP_X)
#undef VP_X
};

_Static_assert(OPT_COUNT <= sizeof(((struct vp_options *)0)->origin),
               "origin[] too small for the option table");

struct vp_options vp_opt = {
    .cap = {.all = VP_NO_CAP},
    .log = VP_WARN,
    .libcuda = "libcuda.so.1",
    .weight_files = "*.safetensors,*.bin,*.pt,*.pth,*.ckpt,*.gguf",
    .warn_max = 20,
    .chunk = 64ull << 20,
};

static const char *const paging_names[] = {"off", "demand", "stream", NULL};
static const char *const evict_names[] = {"collapse", "writeback", NULL};
static const char *const policy_names[] = {"lru", "loop", NULL};
static const char *const place_names[] = {"host", "device", NULL};
static const char *const cupti_names[] = {"auto", "on", "off", NULL};
static const char *const table_window_names[] = {"rule", "timed", NULL};

static int ieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

int vp_parse_bool(const char *s, bool *out, const char **why)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (ieq(s, yes[i])) { *out = true; return 0; }
        if (ieq(s, no[i])) { *out = false; return 0; }
    }
    *why = "expected 1/true/yes/on or 0/false/no/off";
    return -1;
}

int vp_parse_level(const char *s, enum vp_level *out, const char **why)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (ieq(s, names[i])) { *out = (enum vp_level)i; return 0; }
    *why = "expected error, warn, info or debug";
    return -1;
}

/* One of names (NULL-terminated); *why lists them. */
static int parse_choice(const char *s, const char *const *names, int *out, const char **why)
{
    static char expect[128];
    size_t n = 0;
    for (int i = 0; names[i]; i++) {
        if (ieq(s, names[i])) { *out = i; return 0; }
        n += (size_t)snprintf(expect + n, sizeof expect - n, "%s%s", i ? ", " : "expected one of: ", names[i]);
        if (n >= sizeof expect) n = sizeof expect - 1;
    }
    *why = expect;
    return -1;
}

/* vp_parse_size, saying whether a unit was written (*unit_given). */
static int parse_size(const char *s, uint64_t *out, const char **why, int *unit_given)
{
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    if (!isdigit((unsigned char)*p)) { *why = "expected a number with an optional K/M/G/T suffix"; return -1; }
    uint64_t whole = 0;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p++ - '0');
        if (whole > (UINT64_MAX - d) / 10) { *why = "number too large"; return -1; }
        whole = whole * 10 + d;
    }
    uint64_t frac = 0, frac_div = 1;
    int dot = *p == '.';
    if (dot) {
        p++;
        if (!isdigit((unsigned char)*p)) { *why = "expected digits after '.'"; return -1; }
        while (isdigit((unsigned char)*p)) {
            if (frac_div < 1000000000ull) { frac = frac * 10 + (uint64_t)(*p - '0'); frac_div *= 10; }
            p++;
        }
    }
    while (isspace((unsigned char)*p)) p++;
    uint64_t unit = 1;
    switch (toupper((unsigned char)*p)) {
    case 'K': unit = 1ull << 10; p++; break;
    case 'M': unit = 1ull << 20; p++; break;
    case 'G': unit = 1ull << 30; p++; break;
    case 'T': unit = 1ull << 40; p++; break;
    default: break;
    }
    if (unit > 1 && (*p == 'i' || *p == 'I')) p++;
    if (*p == 'b' || *p == 'B') p++;
    while (isspace((unsigned char)*p)) p++;
    if (*p) { *why = "unexpected characters after the size (use K, M, G or T)"; return -1; }
    if (dot && unit == 1) { *why = "a fraction needs a K/M/G/T suffix"; return -1; }
    if (whole > UINT64_MAX / unit) { *why = "size too large"; return -1; }
    uint64_t v = whole * unit;
    /* frac / frac_div of a unit: frac < 10^9 and unit <= 2^40, so their
     * product needs up to 70 bits */
    uint64_t add = (uint64_t)(((unsigned __int128)frac * unit) / frac_div);
    if (v > UINT64_MAX - add) { *why = "size too large"; return -1; }
    *out = v + add;
    *unit_given = unit > 1;
    return 0;
}

int vp_parse_size(const char *s, uint64_t *out, const char **why)
{
    int unit;
    return parse_size(s, out, why, &unit);
}

/* One device's cap: a size, not 0, written with a unit below 1 MiB (16
 * alone is 16 bytes: a forgotten unit), not the largest size (no cap). */
static int one_cap(const char *s, uint64_t *v, const char **why)
{
    int unit;
    if (parse_size(s, v, why, &unit)) return -1;
    if (*v == 0) { *why = "a cap of 0 refuses every allocation (use none for no cap)"; return -1; }
    if (!unit && *v < (1ull << 20)) { *why = "a size without a unit is in bytes, and a cap below 1 MiB is not meant (write 16G)"; return -1; }
    if (*v == VP_NO_CAP) { *why = "the largest size means no cap (write none for no cap)"; return -1; }
    return 0;
}

int vp_cap_parse(const char *s, struct vp_cap *out, const char **why)
{
    struct vp_cap c;
    c.all = VP_NO_CAP;
    for (int i = 0; i < VP_MAX_DEVICES; i++) c.dev[i] = VP_NO_CAP;
    if (ieq(s, "none") || ieq(s, "off")) { *out = c; return 0; }
    if (!*s) { *why = "empty (set a size such as 16G, or none for no cap)"; return -1; }

    char buf[1024];
    if (strlen(s) >= sizeof buf) { *why = "too long"; return -1; }
    strcpy(buf, s);
    bool any_dev = false, plain = false;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        uint64_t v;
        if (colon) {
            *colon = '\0';
            char *end;
            while (isspace((unsigned char)*tok)) tok++;
            if (!isdigit((unsigned char)*tok)) { *why = "device must be a number (0:16G)"; return -1; }
            long d = strtol(tok, &end, 10);
            while (isspace((unsigned char)*end)) end++;
            if (*end || d < 0 || d >= VP_MAX_DEVICES) { *why = "device must be a number from 0 to 63 (0:16G)"; return -1; }
            if (one_cap(colon + 1, &v, why)) return -1;
            if (c.dev[d] != VP_NO_CAP) { *why = "a device is listed twice"; return -1; }
            c.dev[d] = v;
            any_dev = true;
        } else {
            if (plain) { *why = "two caps for every device"; return -1; }
            if (one_cap(tok, &v, why)) return -1;
            c.all = v;
            plain = true;
        }
    }
    if (!any_dev && !plain) { *why = "empty (set a size such as 16G, or none for no cap)"; return -1; }
    *out = c;
    return 0;
}

_Static_assert(sizeof vp_opt.stats_file == sizeof vp_opt.libcuda && sizeof vp_opt.libcuda == sizeof vp_opt.weight_files,
               "string options share one size");

static atomic_int patterns_state; /* 0: not read, 1: being read, 2: read */
static char patterns[VP_PATTERNS_BYTES];

/* Whether s is a list of weight-file patterns vpage can use: shorter than
 * its buffer, each pattern shorter than VP_PATTERN_MAX (books/weights.c). */
static int weight_files_ok(const char *s, const char **why)
{
    if (strlen(s) >= sizeof patterns) { *why = "too long (511 bytes at most)"; return 0; }
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, ",");
        if (n >= VP_PATTERN_MAX) { *why = "a pattern is longer than 127 bytes"; return 0; }
        p += n + (p[n] == ',');
    }
    return 1;
}

/* The patterns as the option table takes them into to: a bad value means
 * the default, as its one line says. Takes no lock. */
static void read_patterns(char *to)
{
    const char *s = getenv("VPAGE_WEIGHT_FILES"), *why;
    if (!s || !weight_files_ok(s, &why)) s = defs[OPT_WEIGHT_FILES].def;
    if (!strcasecmp(s, "none") || !strcasecmp(s, "off")) s = "";
    strcpy(to, s);
}

/* Reads the patterns into the shared copy unless another caller is, or
 * has; returns 1 when it did. */
static int claim_patterns(void)
{
    int state = 0;
    if (!atomic_compare_exchange_strong(&patterns_state, &state, 1)) return 0;
    read_patterns(patterns);
    atomic_store_explicit(&patterns_state, 2, memory_order_release);
    return 1;
}

/* When the library loads, before the program's main, so that the file
 * hooks find them read (a program's weight files are opened before its
 * first CUDA call, on any thread, maybe in a signal handler). */
__attribute__((constructor)) static void patterns_at_load(void) { (void)claim_patterns(); }

const char *vp_weight_patterns(char own[VP_PATTERNS_BYTES])
{
    if (vp_likely(atomic_load_explicit(&patterns_state, memory_order_acquire) == 2)) return patterns;
    if (claim_patterns()) return patterns;
    read_patterns(own); /* a file opened by another library's constructor, while they are read: not waited for */
    return own;
}

uint64_t vp_cap_of(int dev)
{
    if (dev < 0 || dev >= VP_MAX_DEVICES) return vp_opt.cap.all;
    return vp_opt.cap.dev[dev] != VP_NO_CAP ? vp_opt.cap.dev[dev] : vp_opt.cap.all;
}

const char *vp_fmt_bytes(uint64_t b, char *buf, size_t len)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (b == VP_NO_CAP) { snprintf(buf, len, "none"); return buf; }
    double v = (double)b;
    int i = 0;
    while (v >= 1024.0 && i < 4) { v /= 1024.0; i++; }
    if (i == 0) snprintf(buf, len, "%llu B", (unsigned long long)b);
    else snprintf(buf, len, "%.2f %s", v, u[i]);
    return buf;
}

/* Applies text s to option i. Returns 0, or -1 with *why set. */
static int apply(int i, const char *s, const char **why)
{
    switch (i) {
    case OPT_CAP: return vp_cap_parse(s, &vp_opt.cap, why);
    case OPT_LOG: return vp_parse_level(s, &vp_opt.log, why);
    case OPT_STATS: return vp_parse_bool(s, &vp_opt.stats, why);
    case OPT_HELP: return vp_parse_bool(s, &vp_opt.help, why);
    case OPT_STREAM_HASH: return vp_parse_bool(s, &vp_opt.stream_hash, why);
    case OPT_STREAM_LAZY_MAP: return vp_parse_bool(s, &vp_opt.stream_lazy_map, why);
    case OPT_STREAM_FREE_EARLY: return vp_parse_bool(s, &vp_opt.stream_free_early, why);
    case OPT_STREAM_MAP_EARLY: return vp_parse_bool(s, &vp_opt.stream_map_early, why);
    case OPT_TABLE_LEAVE_STALE: return vp_parse_bool(s, &vp_opt.table_leave_stale, why);
    case OPT_TABLE_LEAVE_THIN: return vp_parse_bool(s, &vp_opt.table_leave_thin, why);
    case OPT_STREAM_AHEAD: return vp_parse_bool(s, &vp_opt.stream_ahead, why);
    case OPT_STREAM_FIT: return vp_parse_bool(s, &vp_opt.stream_fit, why);
    case OPT_DROP_FILE_PAGES: return vp_parse_bool(s, &vp_opt.drop_file_pages, why);
    case OPT_CUPTI: return parse_choice(s, cupti_names, &vp_opt.cupti, why);
    case OPT_TABLE_WINDOW: return parse_choice(s, table_window_names, &vp_opt.table_window, why);
    case OPT_WARN_MAX: return vp_parse_size(s, &vp_opt.warn_max, why);
    case OPT_PAGING: return parse_choice(s, paging_names, &vp_opt.paging, why);
    case OPT_CLEAN_EVICT: return parse_choice(s, evict_names, &vp_opt.clean_evict, why);
    case OPT_STREAM_PLACE: return parse_choice(s, place_names, &vp_opt.stream_place, why);
    case OPT_POLICY: return parse_choice(s, policy_names, &vp_opt.policy, why);
    case OPT_PAGED_LIMIT: return vp_parse_size(s, &vp_opt.paged_limit, why);
    case OPT_STREAM_WINDOW: return vp_parse_size(s, &vp_opt.stream_window, why);
    case OPT_STREAM_RESERVE: return vp_parse_size(s, &vp_opt.stream_reserve, why);
    case OPT_STREAM_PREMADE: return vp_parse_size(s, &vp_opt.stream_premade, why);
    case OPT_STREAM_THREADS: {
        uint64_t v;
        if (vp_parse_size(s, &v, why)) return -1;
        if (v < 1 || v > 16) { *why = "must be 1 to 16"; return -1; }
        vp_opt.stream_threads = v;
        return 0;
    }
    case OPT_CHUNK: {
        uint64_t v;
        if (vp_parse_size(s, &v, why)) return -1;
        if (v < (2ull << 20) || v % (2ull << 20)) { *why = "must be a multiple of 2M"; return -1; }
        vp_opt.chunk = v;
        return 0;
    }
    case OPT_STATS_FILE:
    case OPT_TRACE:
    case OPT_TABLE:
    case OPT_LIBCUDA:
    case OPT_WEIGHT_FILES: {
        char *dst = i == OPT_STATS_FILE ? vp_opt.stats_file
                    : i == OPT_TRACE    ? vp_opt.trace
                    : i == OPT_TABLE    ? vp_opt.table
                    : i == OPT_LIBCUDA  ? vp_opt.libcuda
                                        : vp_opt.weight_files;
        size_t cap = sizeof vp_opt.stats_file; /* all five are 512 bytes */
        if (strlen(s) >= cap) { *why = "too long (511 bytes at most)"; return -1; }
        if (i == OPT_WEIGHT_FILES && !weight_files_ok(s, why)) return -1;
        if (i == OPT_LIBCUDA && !*s) { *why = "empty"; return -1; }
        strcpy(dst, s);
        return 0;
    }
    }
    *why = "unknown option";
    return -1;
}

/* s as a log line shows it: control bytes escaped (\xNN: a value cannot
 * forge log lines), cut after 120 bytes with "..." (the reason after it
 * is never lost to the line's length). */
static const char *shown(const char *s, char *buf, size_t len)
{
    size_t o = 0, i = 0;
    for (; s[i] && i < 120 && o + 5 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    if (s[i] && o + 4 < len) o += (size_t)snprintf(buf + o, len - o, "...");
    buf[o] = '\0';
    return buf;
}

/* The smallest cap set on any device (VP_NO_CAP: none). */
static uint64_t smallest_cap(void)
{
    uint64_t least = vp_opt.cap.all;
    for (int d = 0; d < VP_MAX_DEVICES; d++)
        if (vp_opt.cap.dev[d] < least) least = vp_opt.cap.dev[d];
    return least;
}

/* VPAGE_CHUNK is at most the smallest cap (a piece larger than the cap
 * could never come in): larger, it becomes that cap rounded down to 2M
 * (at least 2M), with one line. */
static void bound_chunk(void)
{
    uint64_t least = smallest_cap();
    if (least == VP_NO_CAP || vp_opt.chunk <= least) return;
    uint64_t c = least / (2ull << 20) * (2ull << 20);
    if (c < (2ull << 20)) c = 2ull << 20;
    char a[32], b[32], d[32];
    vp_log_always("VPAGE_CHUNK=%s is larger than the smallest cap (%s): using %s", vp_fmt_bytes(vp_opt.chunk, a, sizeof a),
                  vp_fmt_bytes(least, b, sizeof b), vp_fmt_bytes(c, d, sizeof d));
    vp_opt.chunk = c;
}

int vp_options_load(void)
{
    int rc = 0;
    for (int i = 0; i < OPT_COUNT; i++) {
        const char *why = "";
        (void)apply(i, defs[i].def, &why);
        vp_opt.origin[i] = 0;
        const char *s = getenv(defs[i].env);
        if (!s) continue;
        if (apply(i, s, &why) == 0) {
            vp_opt.origin[i] = 1;
            continue;
        }
        vp_opt.origin[i] = 2;
        char v[512];
        if (i == OPT_CAP) {
            vp_log_always("%s='%s' is not valid: %s; refusing to run (no CUDA call will succeed)",
                          defs[i].env, shown(s, v, sizeof v), why);
            rc = -1;
        } else {
            const char *bad = why;
            (void)apply(i, defs[i].def, &why);
            vp_log_always("%s='%s' is not valid: %s; using the default '%s'",
                          defs[i].env, shown(s, v, sizeof v), bad, defs[i].def);
        }
    }
    if (rc == 0) bound_chunk();
    return rc;
}

void vp_options_print(void)
{
    static const char *origin[] = {"default", "environment", "bad value, default used"};
    vp_log_always("options (environment variable = value [origin]: meaning)");
    for (int i = 0; i < OPT_COUNT; i++) {
        char val[1100];
        const char *s = getenv(defs[i].env);
        snprintf(val, sizeof val, "%s", s && vp_opt.origin[i] == 1 ? s : defs[i].def);
        vp_log_always("  %-17s = %-14s [%s]: %s", defs[i].env, val, origin[vp_opt.origin[i]], defs[i].doc);
    }
}
