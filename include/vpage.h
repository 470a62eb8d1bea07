/* vpage.h - what a program (or a test) can ask libvpage.so directly.
 *
 * These symbols exist only while libvpage.so is loaded; look them up with
 * dlsym(RTLD_DEFAULT, ...) (Python: ctypes.CDLL(None).vpage_counted) so the
 * program still runs without the preload.
 */
#ifndef VPAGE_H
#define VPAGE_H

#include <stddef.h>
#include <stdint.h>

/* Writes vpage's stats as one JSON document into buf (NUL-terminated when
 * len > 0); returns the length the whole document needs, like snprintf.
 * Safe from any thread at any time. */
size_t vpage_stats_json(char *buf, size_t len);

/* Counted device bytes of device dev now and at peak. Returns 0, or -1 when
 * dev is out of range. Either pointer may be NULL. */
int vpage_counted(int dev, uint64_t *current, uint64_t *peak);

/* Where the device bytes at dptr came from, if they are a clean copy of a
 * weight file: writes "path:file offset:tensor name" (the name empty where
 * the file has no safetensors header) into buf and returns 1; else 0. */
int vpage_provenance(uint64_t dptr, char *buf, size_t len);

/* Prints every VPAGE_ option with its value, its origin and its meaning to
 * stderr (what VPAGE_HELP=1 prints; `vpage options` calls it). */
void vpage_print_options(void);

/* Writes out what the trace (VPAGE_TRACE) holds in its buffer, so that the
 * file can be read while the program runs. Nothing without a trace. */
void vpage_trace_flush(void);

#endif
