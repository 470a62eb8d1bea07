/* torchenv.c - PyTorch's allocator settings that paging cannot serve,
 * turned off before PyTorch reads them.
 *
 * PyTorch's expandable_segments:True (PYTORCH_CUDA_ALLOC_CONF, or
 * PYTORCH_ALLOC_CONF from PyTorch 2.9) makes its allocator map VMM chunks
 * of its own (cuMemCreate/cuMemMap) into one growing address range: vpage
 * counts them against the cap but cannot page them, so a program larger
 * than the cap fails with torch.OutOfMemoryError. With paging on
 * (VPAGE_PAGING=stream or demand) the library's constructor, which runs
 * before the program's main and before PyTorch reads its settings, sets
 * the entry to False in the process's environment and says so in one line
 * (a child process inherits the changed value and says nothing). Nothing
 * else is read or changed, and no CUDA call is made.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/log.h"
#include "../common/vp.h"

#define CONF_MAX 4096

/* True when [s, s+n) equals word, ignoring case and spaces around. */
static int is_word(const char *s, size_t n, const char *word)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return n == strlen(word) && !strncasecmp(s, word, n);
}

/* Writes conf into out with each expandable_segments entry that is true
 * set to False. Returns the number of entries changed, or -1 when the
 * value does not fit out. */
static int rewrite(const char *conf, char *out, size_t cap)
{
    size_t o = 0;
    int changed = 0;
    for (const char *p = conf;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        const char *item = p;
        size_t ilen = len;
        if (colon && is_word(p, (size_t)(colon - p), "expandable_segments") &&
            is_word(colon + 1, len - (size_t)(colon + 1 - p), "true")) {
            item = "expandable_segments:False";
            ilen = strlen(item);
            changed++;
        }
        if (o + ilen + 2 > cap) return -1;
        memcpy(out + o, item, ilen);
        o += ilen;
        if (!end) break;
        out[o++] = ',';
        p = end + 1;
    }
    out[o] = '\0';
    return changed;
}

static int paging_on(void)
{
    const char *m = getenv("VPAGE_PAGING");
    return m && (is_word(m, strlen(m), "stream") || is_word(m, strlen(m), "demand"));
}

static void turn_off(const char *var)
{
    const char *v = getenv(var);
    char out[CONF_MAX];
    if (!v) return;
    int n = rewrite(v, out, sizeof out);
    if (n < 0) {
        vp_warn("%s is longer than %d bytes: expandable_segments, if it is set there, stays as it is (VPAGE_PAGING "
                "cannot page it)", var, CONF_MAX);
        return;
    }
    if (!n || setenv(var, out, 1)) return;
    vp_warn("%s: expandable_segments turned off under VPAGE_PAGING (vpage pages PyTorch's usual allocations, not "
            "the memory expandable segments map)", var);
}

__attribute__((constructor)) static void torchenv_init(void)
{
    if (!paging_on()) return;
    turn_off("PYTORCH_CUDA_ALLOC_CONF");
    turn_off("PYTORCH_ALLOC_CONF");
}
