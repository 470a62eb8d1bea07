/* helpers.h - shared by the Criterion suites that run under the preload. */
#ifndef VPAGE_TESTS_HELPERS_H
#define VPAGE_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cu.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* One test per way a program reaches the driver. */
#define TEST_EACH_WAY(suite, name)                                           \
    static void name##_body(enum way w);                                     \
    Test(suite, name##_procaddr) { name##_body(WAY_PROCADDR); }              \
    Test(suite, name##_dlsym) { name##_body(WAY_DLSYM); }                    \
    Test(suite, name##_linked) { name##_body(WAY_LINKED); }                  \
    static void name##_body(enum way w)

#define CU_OK(call) cr_assert_eq((call), CUDA_SUCCESS, "%s failed", #call)

/* vpage's count must equal what the fake device holds. */
#define ASSERT_BOOKS_MATCH(dev)                                                             \
    cr_assert_eq(vpage_now(dev), fake_used(dev), "device %d: vpage counts %llu, device holds %llu", \
                 (dev), (unsigned long long)vpage_now(dev), (unsigned long long)fake_used(dev))

static inline void load_or_die(struct cu *c, enum way w)
{
    cr_assert_eq(cu_load(c, w), 0, "cannot load the driver via %s", way_name(w));
}

/* stderr capture into a temporary file (vpage writes with write(2)). */
struct capture {
    int saved, fd;
    char path[64];
};

static inline void capture_begin(struct capture *k)
{
    strcpy(k->path, "/tmp/vpage-test-XXXXXX");
    k->fd = mkstemp(k->path);
    cr_assert(k->fd >= 0);
    k->saved = dup(2);
    dup2(k->fd, 2);
}

/* Returns what was written to stderr (static buffer). */
static inline const char *capture_end(struct capture *k)
{
    static char buf[16384];
    dup2(k->saved, 2);
    close(k->saved);
    ssize_t n = pread(k->fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(k->fd);
    unlink(k->path);
    return buf;
}

#endif
