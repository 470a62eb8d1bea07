/* safetensors.h - the header of a safetensors file: which tensor lives at
 * which byte range.
 *
 * Contract
 *   The file is: 8 bytes little-endian N, then N bytes of JSON, then the
 *   data. The JSON is an object of tensor name -> {"dtype": string,
 *   "shape": [int...], "data_offsets": [begin, end]} (offsets relative to
 *   the data), plus an optional "__metadata__" object of strings.
 *   vp_st_parse accepts only what is well-formed and consistent: offsets
 *   inside the data, begin <= end, no two tensors overlapping, shape x dtype
 *   size == end - begin for the dtypes it knows (others are kept, unchecked).
 *   Anything else (bad JSON, huge lengths, overlaps, duplicate names, more
 *   than VP_ST_MAX_TENSORS) is rejected with a reason; it never reads past
 *   len, never recurses without bound, and always terminates. Pure: no I/O,
 *   no globals, so it is fuzzed on its own (tests/fuzz).
 */
#ifndef VPAGE_PAGER_SAFETENSORS_H
#define VPAGE_PAGER_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define VP_ST_MAX_HEADER (100u << 20) /* the format's own limit */
#define VP_ST_MAX_TENSORS (1u << 20)
#define VP_ST_MAX_DIMS 16
#define VP_ST_MAX_DEPTH 64

struct vp_st_tensor {
    const char *name; /* NUL-terminated, inside the file's name arena */
    char dtype[16];
    uint64_t begin, end; /* absolute file offsets (data start added) */
    uint32_t ndim;
    uint64_t shape[VP_ST_MAX_DIMS];
};

struct vp_st_file {
    uint64_t data_start;  /* 8 + N */
    size_t ntensors;
    struct vp_st_tensor *t; /* sorted by begin */
    char *names;            /* arena holding every name */
};

/* Parses the JSON header json[0..len) of a file whose data part is
 * data_len bytes long. On success fills *out (free with vp_st_free) and
 * returns 0; on failure returns -1 with *why a static reason and *out empty. */
int vp_st_parse(const char *json, size_t len, uint64_t data_len, struct vp_st_file *out, const char **why);

/* The tensor whose bytes include file offset off, or NULL. */
const struct vp_st_tensor *vp_st_find(const struct vp_st_file *f, uint64_t off);

void vp_st_free(struct vp_st_file *f);

#endif
