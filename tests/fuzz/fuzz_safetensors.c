/* fuzz_safetensors.c - libFuzzer target for the safetensors header parser.
 * The input is a whole file: 8-byte little-endian header length, header,
 * data. Besides not crashing, what is accepted must be consistent. Built by
 * scripts/fuzz.sh (clang -fsanitize=fuzzer); replay.c runs the committed
 * corpus through it in every test run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../books/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | data[i];
    if (n > size - 8) return 0;
    struct vp_st_file f;
    const char *why = NULL;
    if (vp_st_parse((const char *)data + 8, (size_t)n, size - 8 - n, &f, &why) != 0) {
        if (!why) abort();
        return 0;
    }
    for (size_t i = 0; i < f.ntensors; i++) {
        const struct vp_st_tensor *t = &f.t[i];
        if (t->begin < f.data_start || t->end > size || t->begin > t->end) abort();
        if (i && t->begin < f.t[i - 1].end) abort();
        if (t->end > t->begin && vp_st_find(&f, t->begin) != t) abort();
        if (strlen(t->name) > n) abort();
    }
    vp_st_free(&f);
    return 0;
}
