/* file.c - see file.h. */
#define _GNU_SOURCE
#include "file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

void vp_expand_path(const char *tmpl, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < len; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            int n = snprintf(out + o, len - o, "%d", (int)getpid());
            if (n < 0 || (size_t)n >= len - o) break;
            o += (size_t)n;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

int vp_file_open(const char *path, int append)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0644);
}

void vp_file_write(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

void vp_file_close(int fd) { syscall(SYS_close, fd); }
