/* fuzz_weights.c - libFuzzer target for the weight-file books around the
 * parser (books/weights.c): a file that may or may not be a safetensors
 * file, opened and mapped as a loader does, then a script of copies into
 * device addresses (straight out of the mapping, staged through a buffer
 * with the same bytes or with one changed), writes over them, the mapping
 * dropped and made again, the file closed. After each step, every device
 * byte the books call a clean copy of the file must equal the file's byte
 * they name, and a byte written since must not be called clean.
 *
 * Input: 2 bytes (little-endian) of the file's length L, the file's L
 * bytes, then steps of 8 bytes: kind, a 3-byte offset, a 3-byte length
 * (both taken modulo what fits) and a device slot. Built by scripts/fuzz.sh;
 * replay.c runs the committed corpus through it in every test run. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../books/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS 8
#define SLOT 4096
#define BASE 0x7f0000000000ull /* device addresses: never dereferenced */

static uint8_t shadow[SLOTS][SLOT]; /* the bytes each device address was given */
static uint8_t known[SLOTS][SLOT];  /* 1: given by a copy of this input; 0: written otherwise or never */

/* The file offset describe names for dptr ("path:offset:tensor"; the
 * path here has no ':'), or -1 when it is not clean. */
static long long clean_offset(uint64_t dptr)
{
    char buf[4096 + 64], *end = NULL;
    if (!vp_weights_describe(dptr, buf, sizeof buf)) return -1;
    char *c = strchr(buf, ':');
    long long off = c ? strtoll(c + 1, &end, 10) : -1;
    if (!end || *end != ':' || off < 0) abort(); /* clean, and no offset named */
    return off;
}

/* Every byte of slot s in [at, at+n) (at most 64 of them, spread) checked
 * against the file. */
static void check(const uint8_t *file, size_t len, int s, size_t at, size_t n)
{
    size_t stride = n > 64 ? n / 64 : 1;
    for (size_t i = at; i < at + n && i < SLOT; i += stride) {
        uint64_t d = BASE + (uint64_t)s * SLOT + i;
        long long off = clean_offset(d);
        if (off < 0) continue;
        if (!known[s][i]) abort(); /* written since, or never copied, yet clean */
        if ((size_t)off >= len || file[off] != shadow[s][i]) abort(); /* clean, but not that byte */
    }
    uint64_t c = vp_weights_clean_bytes(BASE + (uint64_t)s * SLOT + at, n);
    if (c > n) abort();
}

/* A copy of n bytes of src into slot s at 0 through the books. */
static void copied(int s, const void *src, const uint8_t *bytes, size_t n)
{
    vp_weights_copied(BASE + (uint64_t)s * SLOT, src, n, 1);
    memcpy(shadow[s], bytes, n);
    memset(known[s], 1, n);
}

static void step(const uint8_t *op, const uint8_t *file, size_t len, int fd, uint8_t **map, int *closed)
{
    size_t off = ((size_t)op[1] | (size_t)op[2] << 8 | (size_t)op[3] << 16) % (len + 1);
    size_t n = ((size_t)op[4] | (size_t)op[5] << 8 | (size_t)op[6] << 16) % (len - off + 1);
    int s = op[7] % SLOTS;
    if (n > SLOT) n = SLOT;
    uint8_t *buf = NULL;
    switch (op[0] % 6) {
    case 0: /* straight out of the mapping */
        if (!*map || !n) return;
        copied(s, *map + off, file + off, n);
        if (vp_weights_clean_bytes(BASE + (uint64_t)s * SLOT, n) != n) abort(); /* the whole copy is clean */
        break;
    case 1: /* staged: a buffer of the file's bytes (a pinned buffer, a pread) */
    case 2: /* staged, one byte changed */
        if (!n || !(buf = malloc(n))) return;
        memcpy(buf, file + off, n);
        if (op[0] % 6 == 2) buf[op[1] % n] ^= 1;
        copied(s, buf, buf, n);
        free(buf);
        break;
    case 3: { /* written by something else (a memset, a copy from the device) */
        size_t at = op[1] % SLOT;
        if (n > SLOT - at) n = SLOT - at;
        vp_weights_written(BASE + (uint64_t)s * SLOT + at, n);
        memset(known[s] + at, 0, n);
        check(file, len, s, at, n);
        if (vp_weights_clean_bytes(BASE + (uint64_t)s * SLOT + at, n)) abort();
        return;
    }
    case 4: /* the mapping dropped; made again elsewhere while the file is open, or not (a loader that
             * reads the file into buffers: staged copies are then compared with the file itself) */
        if (*map) {
            vp_weights_unmapped(*map, len);
            munmap(*map, len);
        }
        *map = len && !*closed && (op[1] & 1) ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        if (*map == MAP_FAILED) *map = NULL;
        if (*map) vp_weights_mapped(*map, len, PROT_READ, MAP_PRIVATE, fd, 0);
        return;
    default: /* the descriptor closed, the mapping kept (a loader that mapped the file and let go) */
        vp_weights_closed(fd);
        *closed = 1;
        return;
    }
    check(file, len, s, 0, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8;
    if (len > size - 2) len = size - 2;
    const uint8_t *file = data + 2, *ops = data + 2 + len;
    size_t nops = (size - 2 - len) / 8;
    char path[] = "/tmp/vpage-fuzz-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    if (fd < 0) return 0;
    if (write(fd, file, len) != (ssize_t)len) goto out;
    memset(known, 0, sizeof known);
    vp_weights_opened(fd);
    uint8_t *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (map == MAP_FAILED) map = NULL;
    if (map) vp_weights_mapped(map, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int closed = 0;
    for (size_t i = 0; i < nops; i++) step(ops + 8 * i, file, len, fd, &map, &closed);
    if (map) munmap(map, len);
out:
    vp_weights_closed(fd);
    close(fd);
    unlink(path);
    vp_weights_forget();
    return 0;
}
