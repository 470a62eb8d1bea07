/* test_safetensors.c - the header parser on good and hostile headers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../books/safetensors.h"

static const char *reject(const char *json, uint64_t data_len)
{
    struct vp_st_file f;
    const char *why = NULL;
    int rc = vp_st_parse(json, strlen(json), data_len, &f, &why);
    cr_assert_eq(rc, -1, "accepted: %s", json);
    cr_assert_not_null(why);
    cr_assert_eq(f.ntensors, 0);
    return why;
}

Test(safetensors, parses_names_offsets_and_shapes)
{
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"model.b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
                    "\"model.a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    struct vp_st_file f;
    const char *why = NULL;
    cr_assert_eq(vp_st_parse(h, strlen(h), 22, &f, &why), 0, "%s", why);
    cr_assert_eq(f.ntensors, 2);
    cr_assert_eq(f.data_start, 8 + strlen(h));
    cr_assert_str_eq(f.t[0].name, "model.a", "sorted by offset");
    cr_assert_eq(f.t[0].begin, f.data_start);
    cr_assert_eq(f.t[0].ndim, 2);
    cr_assert_str_eq(f.t[1].dtype, "BF16");
    cr_assert_eq(vp_st_find(&f, f.data_start + 15), &f.t[0]);
    cr_assert_eq(vp_st_find(&f, f.data_start + 16), &f.t[1]);
    cr_assert_null(vp_st_find(&f, f.data_start + 22));
    cr_assert_null(vp_st_find(&f, 3), "inside the header is no tensor");
    vp_st_free(&f);
}

Test(safetensors, decodes_escapes_in_names)
{
    const char *h = "{\"caf\\u00e9\\ud83d\\ude00\\\"q\\\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    struct vp_st_file f;
    const char *why = NULL;
    cr_assert_eq(vp_st_parse(h, strlen(h), 1, &f, &why), 0, "%s", why);
    cr_assert_str_eq(f.t[0].name, "caf\xc3\xa9\xf0\x9f\x98\x80\"q\"");
    vp_st_free(&f);
}

Test(safetensors, accepts_empty_and_unknown_dtypes)
{
    struct vp_st_file f;
    const char *why = NULL;
    cr_assert_eq(vp_st_parse("{}", 2, 0, &f, &why), 0);
    cr_assert_eq(f.ntensors, 0);
    vp_st_free(&f);
    const char *h = "{\"q\":{\"dtype\":\"F4\",\"shape\":[7],\"data_offsets\":[0,4]}}";
    cr_assert_eq(vp_st_parse(h, strlen(h), 4, &f, &why), 0, "%s", why);
    vp_st_free(&f);
}

Test(safetensors, rejects_hostile_headers)
{
    cr_assert_str_eq(reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                            "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6),
                     "tensors overlap");
    cr_assert_str_eq(reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[9],\"data_offsets\":[0,9]}}", 4),
                     "data_offsets outside the data");
    cr_assert_str_eq(reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,2]}}", 4),
                     "data_offsets outside the data");
    cr_assert_str_eq(reject("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4),
                     "shape and dtype disagree with data_offsets");
    cr_assert_str_eq(reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                            "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2),
                     "a tensor name appears twice");
    cr_assert_str_eq(reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[99999999999999999999],\"data_offsets\":[0,1]}}", 1),
                     "integer too large");
    cr_assert_str_eq(reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],"
                            "\"data_offsets\":[0,1]}}", 1), "shape too large");
    reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offs", 1);
    reject("{} {}", 0);
    reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":1}}", 1);
    reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1);
    reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1);
    reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1);
    reject("{\"a\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    reject("{\"a\\u0000\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    reject("[]", 0);
    reject("", 0);
}

Test(safetensors, bounds_nesting_in_metadata)
{
    char h[400];
    int n = snprintf(h, sizeof h, "{\"__metadata__\":");
    for (int i = 0; i < 64; i++) h[n++] = '[';
    for (int i = 0; i < 64; i++) h[n++] = ']';
    h[n++] = '}';
    h[n] = '\0';
    struct vp_st_file f;
    const char *why = NULL;
    cr_assert_eq(vp_st_parse(h, (size_t)n, 0, &f, &why), 0, "64 levels are allowed: %s", why);
    vp_st_free(&f);
    n = snprintf(h, sizeof h, "{\"__metadata__\":");
    for (int i = 0; i < 65; i++) h[n++] = '[';
    for (int i = 0; i < 65; i++) h[n++] = ']';
    h[n++] = '}';
    h[n] = '\0';
    cr_assert_str_eq(reject(h, 0), "JSON nested too deep");
}

Test(safetensors, many_tensors)
{
    size_t cap = 64u << 20;
    char *h = malloc(cap);
    size_t n = 0;
    n += (size_t)sprintf(h + n, "{");
    for (int i = 0; i < 20000; i++)
        n += (size_t)sprintf(h + n, "%s\"layer.%d.weight\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[%d,%d]}",
                             i ? "," : "", i, i * 4, i * 4 + 4);
    n += (size_t)sprintf(h + n, "}");
    struct vp_st_file f;
    const char *why = NULL;
    cr_assert_eq(vp_st_parse(h, n, 80000, &f, &why), 0, "%s", why);
    cr_assert_eq(f.ntensors, 20000);
    cr_assert_str_eq(vp_st_find(&f, f.data_start + 4 * 12345 + 1)->name, "layer.12345.weight");
    vp_st_free(&f);
    free(h);
}
