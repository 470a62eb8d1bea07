/* test_options.c - the option parsers, called directly. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>

#include "../common/options.h"

static uint64_t size_ok(const char *s)
{
    uint64_t v = 0;
    const char *why = NULL;
    cr_assert_eq(vp_parse_size(s, &v, &why), 0, "'%s' rejected: %s", s, why ? why : "");
    return v;
}

static void size_bad(const char *s)
{
    uint64_t v = 12345;
    const char *why = NULL;
    cr_assert_eq(vp_parse_size(s, &v, &why), -1, "'%s' accepted as %llu", s, (unsigned long long)v);
    cr_assert_not_null(why);
    cr_assert_eq(v, 12345, "a rejected value must not change the output");
}

Test(options, sizes)
{
    cr_assert_eq(size_ok("0"), 0);
    cr_assert_eq(size_ok("4096"), 4096);
    cr_assert_eq(size_ok("16G"), 16ull << 30);
    cr_assert_eq(size_ok("16g"), 16ull << 30);
    cr_assert_eq(size_ok("512M"), 512ull << 20);
    cr_assert_eq(size_ok("2K"), 2048);
    cr_assert_eq(size_ok("1T"), 1ull << 40);
    cr_assert_eq(size_ok("1.5G"), 3ull << 29);
    cr_assert_eq(size_ok("0.25M"), 256ull << 10);
    cr_assert_eq(size_ok("8GiB"), 8ull << 30);
    cr_assert_eq(size_ok("8GB"), 8ull << 30);
    cr_assert_eq(size_ok(" 24 G "), 24ull << 30);
    cr_assert_eq(size_ok("16777215T"), 16777215ull << 40);
    cr_assert_eq(size_ok("1.99999999T"), 2199023244556ull, "a fraction of a large unit, exact to the byte");
    cr_assert_eq(size_ok("0.999999999T"), 1099511626676ull);
}

Test(options, bad_sizes)
{
    size_bad("");
    size_bad("G");
    size_bad("abc");
    size_bad("16X");
    size_bad("-1G");
    size_bad("16G16");
    size_bad("1.5");
    size_bad("1.0");
    size_bad("1.G");
    size_bad("99999999999999999999");
    size_bad("16777216T");
    size_bad("0x10");
}

Test(options, bools)
{
    const char *yes[] = {"1", "true", "TRUE", "yes", "on"}, *no[] = {"0", "false", "no", "Off"};
    bool b;
    const char *why;
    for (int i = 0; i < 5; i++) {
        b = false;
        cr_assert_eq(vp_parse_bool(yes[i], &b, &why), 0);
        cr_assert(b, "%s", yes[i]);
    }
    for (int i = 0; i < 4; i++) {
        b = true;
        cr_assert_eq(vp_parse_bool(no[i], &b, &why), 0);
        cr_assert(!b, "%s", no[i]);
    }
    cr_assert_eq(vp_parse_bool("2", &b, &why), -1);
    cr_assert_eq(vp_parse_bool("", &b, &why), -1);
    cr_assert_eq(vp_parse_bool("enable", &b, &why), -1);
}

Test(options, levels)
{
    enum vp_level l;
    const char *why;
    cr_assert_eq(vp_parse_level("debug", &l, &why), 0);
    cr_assert_eq(l, VP_DEBUG);
    cr_assert_eq(vp_parse_level("ERROR", &l, &why), 0);
    cr_assert_eq(l, VP_ERROR);
    cr_assert_eq(vp_parse_level("verbose", &l, &why), -1);
}

Test(options, caps)
{
    struct vp_cap c;
    const char *why = NULL;
    cr_assert_eq(vp_cap_parse("16G", &c, &why), 0);
    cr_assert_eq(c.all, 16ull << 30);
    cr_assert_eq(c.dev[0], VP_NO_CAP);

    cr_assert_eq(vp_cap_parse("0:16G,1:24G", &c, &why), 0);
    cr_assert_eq(c.all, VP_NO_CAP);
    cr_assert_eq(c.dev[0], 16ull << 30);
    cr_assert_eq(c.dev[1], 24ull << 30);
    cr_assert_eq(c.dev[2], VP_NO_CAP);

    cr_assert_eq(vp_cap_parse("8G,3:1G", &c, &why), 0);
    cr_assert_eq(c.all, 8ull << 30);
    cr_assert_eq(c.dev[3], 1ull << 30);

    cr_assert_eq(vp_cap_parse("none", &c, &why), 0);
    cr_assert_eq(c.all, VP_NO_CAP);
}

Test(options, bad_caps_are_errors_not_no_limit)
{
    const char *bad[] = {"", "0", "0:0", "abc", "16", "16X", "0:", ":16G", "x:16G", "64:1G", "-1:1G",
                         "0:1G,0:2G", "1G,2G", ",", "16G,", "0:16", "1.0", "18446744073709551615", "1048575"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct vp_cap c;
        c.all = 42;
        const char *why = NULL;
        int rc = vp_cap_parse(bad[i], &c, &why);
        if (!strcmp(bad[i], "16G,")) {
            /* a trailing comma is harmless */
            cr_assert_eq(rc, 0);
            continue;
        }
        cr_assert_eq(rc, -1, "VPAGE_CAP='%s' was accepted", bad[i]);
        cr_assert_not_null(why, "no reason given for '%s'", bad[i]);
        cr_assert_eq(c.all, 42, "a rejected cap changed the output");
    }
}

Test(options, a_cap_with_a_unit_may_be_small_and_one_without_may_be_large)
{
    struct vp_cap c;
    const char *why = NULL;
    cr_assert_eq(vp_cap_parse("100K", &c, &why), 0, "%s", why);
    cr_assert_eq(c.all, 100ull << 10);
    cr_assert_eq(vp_cap_parse("1048576", &c, &why), 0, "%s", why);
    cr_assert_eq(vp_cap_parse("16", &c, &why), -1);
    cr_assert(strstr(why, "without a unit"), "%s", why);
    cr_assert_eq(vp_cap_parse("18446744073709551615", &c, &why), -1);
    cr_assert(strstr(why, "no cap"), "%s", why);
}

Test(options, load_reports_bad_values)
{
    setenv("VPAGE_LOG", "loud", 1);
    setenv("VPAGE_CAP", "12Q", 1);
    cr_assert_eq(vp_options_load(), -1, "a malformed cap must make the load fail");
    cr_assert_eq(vp_opt.log, VP_WARN, "bad VPAGE_LOG falls back to the default");
    setenv("VPAGE_CAP", "3G", 1);
    setenv("VPAGE_LOG", "debug", 1);
    cr_assert_eq(vp_options_load(), 0);
    cr_assert_eq(vp_cap_of(0), 3ull << 30);
    cr_assert_eq(vp_opt.log, VP_DEBUG);
    unsetenv("VPAGE_CAP");
    cr_assert_eq(vp_options_load(), 0);
    cr_assert_eq(vp_cap_of(0), VP_NO_CAP, "unset means no cap");
}

Test(options, a_chunk_larger_than_the_cap_becomes_the_cap)
{
    setenv("VPAGE_CAP", "1G", 1);
    setenv("VPAGE_CHUNK", "16T", 1);
    cr_assert_eq(vp_options_load(), 0);
    cr_assert_eq(vp_opt.chunk, 1ull << 30);
    setenv("VPAGE_CAP", "0:8G,1:3M", 1);
    cr_assert_eq(vp_options_load(), 0);
    cr_assert_eq(vp_opt.chunk, 2ull << 20, "the smallest cap, rounded down to 2M");
    setenv("VPAGE_CHUNK", "2M", 1);
    cr_assert_eq(vp_options_load(), 0);
    cr_assert_eq(vp_opt.chunk, 2ull << 20);
    unsetenv("VPAGE_CAP");
    unsetenv("VPAGE_CHUNK");
}

Test(options, echoed_values_are_escaped_and_cut_and_the_reason_stays, .init = cr_redirect_stderr)
{
    char longv[3000];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    setenv("VPAGE_LOG", "loud\nvpage[1]: forged line", 1);
    vp_options_load();
    setenv("VPAGE_POLICY", longv, 1);
    vp_options_load();
    unsetenv("VPAGE_LOG");
    unsetenv("VPAGE_POLICY");
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    char line[4096], all[16384] = "";
    while (fgets(line, sizeof line, f)) strncat(all, line, sizeof all - strlen(all) - 1);
    cr_assert(strstr(all, "VPAGE_LOG='loud\\x0avpage[1]: forged line' is not valid"), "%s", all);
    cr_assert(!strstr(all, "\nvpage[1]: forged"), "a value forged a line: %s", all);
    cr_assert(strstr(all, "aaa...' is not valid: ") && strstr(all, "using the default 'lru'"), "%s", all);
}

Test(options, weight_file_patterns_too_long_are_refused_and_the_default_used)
{
    char pat[300] = "*.safetensors,";
    memset(pat + strlen(pat), 'p', 200);
    pat[214] = 0;
    setenv("VPAGE_WEIGHT_FILES", pat, 1);
    vp_options_load();
    cr_assert_str_eq(vp_opt.weight_files, "*.safetensors,*.bin,*.pt,*.pth,*.ckpt,*.gguf",
                     "a pattern over 127 bytes: the default, as the line says");
    char longv[700];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    setenv("VPAGE_WEIGHT_FILES", longv, 1);
    vp_options_load();
    cr_assert_str_eq(vp_opt.weight_files, "*.safetensors,*.bin,*.pt,*.pth,*.ckpt,*.gguf");
    setenv("VPAGE_WEIGHT_FILES", "*.st,model-*.bin", 1);
    vp_options_load();
    cr_assert_str_eq(vp_opt.weight_files, "*.st,model-*.bin");
    unsetenv("VPAGE_WEIGHT_FILES");
}
