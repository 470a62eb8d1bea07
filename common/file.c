/* file.c - see file.h. */
#define _GNU_SOURCE
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

int vp_file_open(const char *path, int append, const char **why)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (append ? O_APPEND : O_TRUNC);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags, 0644);
    if (fd < 0)
        *why = errno == ELOOP ? "it is a symbolic link, which vpage does not write through"
               : errno == EACCES ? "permission denied"
               : errno == ENOENT ? "its folder does not exist"
                                 : "it cannot be opened for writing";
    return fd;
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

char *vp_file_slurp(const char *path, size_t most, size_t *len)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    size_t cap = 1 << 16, n = 0;
    char *buf = fd < 0 ? NULL : malloc(cap + 1);
    *len = 0;
    while (buf) {
        if (n == cap) {
            char *more = cap > most ? NULL : realloc(buf, cap * 2 + 1);
            if (!more) {
                free(buf);
                buf = NULL;
                *len = n;
                break;
            }
            buf = more;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            free(buf);
            buf = NULL;
        } else if (r == 0) {
            break;
        }
        n += r > 0 ? (size_t)r : 0;
    }
    if (fd >= 0) vp_file_close(fd);
    if (buf && n > most) {
        free(buf);
        *len = n;
        return NULL;
    }
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}
