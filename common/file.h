/* file.h - vpage's own files (stats, trace): named from an option's
 * template, opened, written and closed with the raw system calls.
 *
 * Contract
 *   vpage's own files never reach its file hooks (interpose/libc.c): the
 *   calls here are system calls, not the C library's exported open/close,
 *   so writing a stats file neither takes the weights lock nor can be
 *   mistaken for the program's. Safe from any thread; no allocation.
 */
#ifndef VPAGE_COMMON_FILE_H
#define VPAGE_COMMON_FILE_H

#include <stddef.h>

/* A file name from an option's template: %p becomes the process id. */
void vp_expand_path(const char *tmpl, char *out, size_t len);

/* Opens path for writing, created 0644 if missing: emptied (append 0) or
 * appended to (append 1); never through a symbolic link (O_NOFOLLOW: a
 * predictable path such as /tmp/vpage-%p.json cannot be made to clobber
 * another file). Returns the descriptor (close-on-exec), or -1 with
 * *why set to the reason. */
int vp_file_open(const char *path, int append, const char **why);

/* Writes all n bytes, or as many as the system takes before an error. */
void vp_file_write(int fd, const char *p, size_t n);

void vp_file_close(int fd);

/* The whole of path (at most most bytes) in memory the caller frees, with
 * a NUL after it; *len its length. NULL when it cannot be opened or read,
 * or is larger (then *len is past most). Allocates: not for signal
 * handlers. */
char *vp_file_slurp(const char *path, size_t most, size_t *len);

#endif
