/* trace.c - see trace.h. */
#define _GNU_SOURCE
#include "trace.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../include/vpage.h"
#include "log.h"
#include "options.h"
#include "file.h"
#include "vp.h"

atomic_int vp_trace_state;

#define BUF (256u << 10)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char buf[BUF];
static size_t len;
static int fd = -1, failed;
static struct timespec t0;

int vp_trace_on_slow(void)
{
    int s = vp_opt.trace[0] ? 1 : -1;
    int expect = 0;
    atomic_compare_exchange_strong(&vp_trace_state, &expect, s);
    return atomic_load(&vp_trace_state) > 0;
}

/* Writes the buffer out (mu held). */
static void flush_locked(void)
{
    if (fd >= 0) vp_file_write(fd, buf, len);
    len = 0;
}

static int open_locked(void)
{
    if (fd >= 0) return 0;
    if (failed) return -1;
    char path[600];
    vp_expand_path(vp_opt.trace, path, sizeof path);
    const char *why;
    fd = vp_file_open(path, 1, &why);
    if (fd < 0) {
        failed = 1;
        vp_warn("cannot write the trace to %s (VPAGE_TRACE): %s; tracing nothing", path, why);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    return 0;
}

void vp_trace(const char *event, const char *fmt, ...)
{
    struct timespec now;
    char line[1024];
    pthread_mutex_lock(&mu);
    if (open_locked() == 0) {
        clock_gettime(CLOCK_MONOTONIC, &now); /* under mu: lines in time order */
        long long us = (long long)(now.tv_sec - t0.tv_sec) * 1000000 + (now.tv_nsec - t0.tv_nsec) / 1000;
        const int most = (int)sizeof line - 2; /* room for the newline */
        int n = snprintf(line, sizeof line, "%lld\t%s", us, event);
        if (n > most) n = most;
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && n < most) {
            int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
            n = m < 0 ? n : n + m > most ? most : n + m; /* a long line is cut, not lost */
        }
        va_end(ap);
        if (n > 0) {
            line[n++] = '\n';
            if (len + (size_t)n > BUF) flush_locked();
            memcpy(buf + len, line, (size_t)n);
            len += (size_t)n;
        }
    }
    pthread_mutex_unlock(&mu);
}

VP_EXPORT void vpage_trace_flush(void)
{
    pthread_mutex_lock(&mu);
    flush_locked();
    pthread_mutex_unlock(&mu);
}

void vp_trace_close(void)
{
    pthread_mutex_lock(&mu);
    flush_locked();
    if (fd >= 0) vp_file_close(fd);
    fd = -1;
    pthread_mutex_unlock(&mu);
}

void vp_trace_reset_child(void)
{
    pthread_mutex_init(&mu, NULL);
    len = 0;
    if (fd >= 0) vp_file_close(fd);
    fd = -1;
    failed = 0;
}
