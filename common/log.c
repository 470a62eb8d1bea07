/* log.c - see log.h. */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static _Thread_local int printing;

static void emit(const char *fmt, va_list ap)
{
    if (printing) return;
    printing = 1;
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "vpage[%d]: ", (int)getpid());
    if (n < 0) n = 0;
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    if (m < 0) m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2) len = sizeof buf - 2;
    buf[len++] = '\n';
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(2, p, len);
        if (w <= 0) break;
        p += w;
        len -= (size_t)w;
    }
    printing = 0;
}

void vp_log(enum vp_level level, const char *fmt, ...)
{
    if (level > vp_opt.log) return;
    va_list ap;
    va_start(ap, fmt);
    emit(fmt, ap);
    va_end(ap);
}

void vp_log_always(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(fmt, ap);
    va_end(ap);
}

void vp_log_limited(enum vp_level level, atomic_uint_fast64_t *count, const char *fmt, ...)
{
    if (level > vp_opt.log) return;
    uint64_t n = atomic_fetch_add(count, 1) + 1;
    if (n > vp_opt.warn_max) return;
    va_list ap;
    va_start(ap, fmt);
    emit(fmt, ap);
    va_end(ap);
    if (n == vp_opt.warn_max)
        vp_log(level, "(further messages of this kind are counted in the stats, not printed)");
}
