/* weights.h - which device bytes are clean copies of which weight file.
 *
 * Contract
 *   Owns three tables, under one mutex (never held across a driver call; the
 *   system calls made under it are the header read and the byte comparisons
 *   of staged copies):
 *     files     weight files seen (by device and inode), their path, and
 *               their safetensors header once read (lazily, at the first
 *               copy out of them: a process that never copies to a GPU pays
 *               only for recording opens and mappings);
 *     mappings  mmaps of those files: host range -> file offset (private
 *               writable ones too: a copy out of them counts only if none of
 *               its pages was written, which /proc/self/pagemap tells);
 *     copies    device range -> file offset, made when a host-to-device copy
 *               reads entirely from such a mapping, or from a staging buffer
 *               (pinned memory, a read buffer) whose bytes equal a whole
 *               tensor of a safetensors file that is mapped or held open,
 *               compared byte for byte at the copy (against the mapping, or
 *               read from the file). Sorted, non-overlapping.
 *   A device range stops being a clean copy when it is written by a copy or
 *   memset, or freed: vp_weights_written() trims or splits the records.
 *   2D, 3D and peer copies cut the span they write. Writes by kernels are
 *   NOT seen (the driver does not say which pointer parameters a kernel
 *   writes), nor yet batched copies (cuMemcpyBatchAsync, cuMemcpy3DBatch*):
 *   a consumer that evicts "clean" data must treat that as a hint
 *   (policy), not a guarantee.
 *   Files match VPAGE_WEIGHT_FILES (shell patterns on the base name).
 *   All entry points are cheap no-ops until a matching file is mapped.
 */
#ifndef VPAGE_PAGER_WEIGHTS_H
#define VPAGE_PAGER_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VP_WEIGHTS_MAX_FDS 65536 /* fds at or past it are not tracked */

/* From the libc hooks (interpose/libc.c). fd is open on path. A hook that
 * runs in a signal handler on a thread inside these books passes through
 * untracked (a close still forgets its fd): it never waits for its own
 * thread. */
int vp_weights_wanted(const char *path); /* does the name match? */
void vp_weights_opened(int fd);
void vp_weights_closed(int fd);
/* True when fd names a tracked weight file. */
int vp_weights_tracked(int fd);
void vp_weights_mapped(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void vp_weights_unmapped(void *addr, size_t len);
void vp_weights_protected(void *addr, size_t len, int prot);

/* From the copy hooks: a copy of n bytes into device memory at dst was
 * issued. host_src: src is host memory by the entry point's contract
 * (cuMemcpyHtoD*), so its bytes may be read to match a staging buffer;
 * 0 for unified copies (cuMemcpy*), whose src may be device memory: then
 * only a src inside a weight-file mapping counts. */
void vp_weights_copied(uint64_t dst, const void *src, size_t n, int host_src);
/* From start (core/init.c), when the file's pages are to be given back
 * (VPAGE_DROP_FILE_PAGES under stream mode): holds(dptr) tells device
 * memory whose bytes vpage keeps in host memory itself. A copy issued
 * straight out of a weight-file mapping (not staged) into such memory
 * then gives the whole pages of its source back to the kernel
 * (madvise MADV_PAGEOUT), queued when the copy returned and made on
 * pageout.c's thread, so the copying thread does not wait for it: the
 * page cache drops them unless another process maps them, the mapping
 * stays valid (a later read comes from the file again). Counted per file
 * (pages_given_back in the report, which waits for the queue first). */
void vp_weights_give_back_pages(int (*holds)(uint64_t dptr));

/* dst..dst+n was written (copy from elsewhere, memset) or freed. */
void vp_weights_written(uint64_t dst, size_t n);

/* True once any weight file was mapped (the copy hooks' fast check). */
int vp_weights_active(void);

/* "path:offset:tensor" for the clean copy holding dptr, into buf. Returns
 * 1 if dptr is a clean copy, else 0 (buf empty). */
int vp_weights_describe(uint64_t dptr, char *buf, size_t len);

/* Forgets every file, mapping and copy (the fuzz target: each input its
 * own file, and never more than MAX_FILES of them). */
void vp_weights_forget(void);

/* Bytes of dptr..dptr+n that are clean copies of weight-file bytes. */
uint64_t vp_weights_clean_bytes(uint64_t dptr, uint64_t n);

/* The weight files for the stats dump (common/stats.c): a JSON array, or
 * table lines. Files opened but never mapped are left out. */
void vp_weights_report(int json, void (*emit)(void *ctx, const char *fmt, ...), void *ctx);

/* In a child after fork (weights lock not held): forgets the device copies. */
void vp_weights_reset_child(void);

void vp_weights_lock(void);
void vp_weights_unlock(void);

#endif
