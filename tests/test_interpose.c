/* test_interpose.c - every way to the driver ends in vpage's wrappers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/wait.h>

#include "helpers.h"

typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);

TEST_EACH_WAY(interpose, hooked_functions_are_vpage_wrappers)
{
    struct cu c;
    load_or_die(&c, w);
    cr_assert_str_eq(lib_of((void *)c.cuMemAlloc), "libvpage.so", "%s: cuMemAlloc is in %s", way_name(w),
                     lib_of((void *)c.cuMemAlloc));
    cr_assert_str_eq(sym_of((void *)c.cuMemAlloc), "cuMemAlloc_v2");
    cr_assert_str_eq(lib_of((void *)c.cuLaunchKernel), "libvpage.so");
    cr_assert_str_eq(lib_of((void *)c.cuMemCreate), "libvpage.so");
    /* functions vpage does not wrap come straight from the driver */
    cr_assert_str_eq(lib_of((void *)c.cuCtxSynchronize), "libcuda.so.1", "%s: cuCtxSynchronize is in %s",
                     way_name(w), lib_of((void *)c.cuCtxSynchronize));
    /* and the wrapper really counts */
    CUdeviceptr p;
    CU_OK(c.cuMemAlloc(&p, 3 * MiB));
    cr_assert_eq(vpage_now(0), 3 * MiB);
    ASSERT_BOOKS_MATCH(0);
    CU_OK(c.cuMemFree(p));
    cr_assert_eq(vpage_now(0), 0);
}

static gpa_fn load_gpa(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    cr_assert_not_null(h);
    gpa_fn gpa = (gpa_fn)dlsym(h, "cuGetProcAddress_v2");
    cr_assert_not_null(gpa);
    cr_assert_str_eq(lib_of((void *)gpa), "libvpage.so", "dlsym(cuGetProcAddress_v2) must give vpage's");
    return gpa;
}

static const char *resolve(gpa_fn gpa, const char *api, int ver, cuuint64_t flags)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult st;
    cr_assert_eq(gpa(api, &fn, ver, flags, &st), CUDA_SUCCESS, "%s@%d", api, ver);
    cr_assert_str_eq(lib_of(fn), "libvpage.so", "%s@%d flags %llu is in %s", api, ver, (unsigned long long)flags,
                     lib_of(fn));
    return sym_of(fn);
}

Test(interpose, procaddr_answers_each_symbol_with_its_own_wrapper)
{
    gpa_fn gpa = load_gpa();
    const cuuint64_t PT = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
    cr_assert_str_eq(resolve(gpa, "cuLaunchKernel", 12000, 0), "cuLaunchKernel");
    cr_assert_str_eq(resolve(gpa, "cuLaunchKernel", 12000, PT), "cuLaunchKernel_ptsz");
    cr_assert_str_eq(resolve(gpa, "cuLaunchKernelEx", 12000, PT), "cuLaunchKernelEx_ptsz");
    cr_assert_str_eq(resolve(gpa, "cuMemAllocAsync", 12000, PT), "cuMemAllocAsync_ptsz");
    cr_assert_str_eq(resolve(gpa, "cuMemFreeAsync", 12000, 0), "cuMemFreeAsync");
    cr_assert_str_eq(resolve(gpa, "cuGraphLaunch", 12000, PT), "cuGraphLaunch_ptsz");
    /* cuda.h renames cuGraphInstantiate (CUDA 12 on) */
    cr_assert_str_eq(resolve(gpa, "cuGraphInstantiate", 12000, 0), "cuGraphInstantiateWithFlags");
    cr_assert_str_eq(resolve(gpa, "cuMemAlloc", 3020, 0), "cuMemAlloc_v2");
    /* cuGetProcAddress itself: 4 arguments before 12000, 5 from 12000 */
    cr_assert_str_eq(resolve(gpa, "cuGetProcAddress", 11030, 0), "cuGetProcAddress");
    cr_assert_str_eq(resolve(gpa, "cuGetProcAddress", 12000, 0), "cuGetProcAddress_v2");
}

Test(interpose, procaddr_through_the_v1_wrapper_also_wraps)
{
    gpa_fn gpa = load_gpa();
    CUresult (*gpa1)(const char *, void **, int, cuuint64_t) = NULL;
    CUdriverProcAddressQueryResult st;
    CU_OK(gpa("cuGetProcAddress", (void **)&gpa1, 11030, 0, &st));
    void *fn = NULL;
    CU_OK(gpa1("cuMemFree", &fn, 11030, 0));
    cr_assert_str_eq(lib_of(fn), "libvpage.so");
    cr_assert_str_eq(sym_of(fn), "cuMemFree_v2");
}

Test(interpose, unknown_names_fail_as_the_driver_says)
{
    gpa_fn gpa = load_gpa();
    void *fn = (void *)1;
    CUdriverProcAddressQueryResult st;
    cr_assert_eq(gpa("cuNoSuchThing", &fn, 13000, 0, &st), CUDA_ERROR_NOT_FOUND);
    cr_assert_null(fn);
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    cr_assert_null(dlsym(h, "cuNoSuchThing"));
}

Test(interpose, dlsym_rtld_next_still_means_after_the_caller)
{
    void *(*next_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    cr_assert_not_null(next_malloc, "RTLD_NEXT malloc not found");
    cr_assert_eq((void *)next_malloc, dlsym(RTLD_DEFAULT, "malloc"), "RTLD_NEXT malloc came from %s",
                 lib_of((void *)next_malloc));
    /* a cu name after this program: vpage's export (vpage comes next), not
     * the driver's, which is what a lookup made from inside vpage finds */
    void *next_alloc = dlsym(RTLD_NEXT, "cuMemAlloc_v2");
    cr_assert_str_eq(lib_of(next_alloc), "libvpage.so");
    void *dflt = dlsym(RTLD_DEFAULT, "cuMemAlloc_v2");
    cr_assert_str_eq(lib_of(dflt), "libvpage.so");
}

/* Runs argv with the given extra environment and returns its stderr. */
static const char *run_child(char *const argv[], const char *env1, const char *env2)
{
    struct capture k;
    capture_begin(&k);
    pid_t pid = fork();
    if (pid == 0) {
        putenv((char *)env1);
        if (env2) putenv((char *)env2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    const char *out = capture_end(&k);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s exited %d", argv[0], status);
    return out;
}

Test(interpose, inert_in_processes_that_never_use_cuda)
{
    /* with a malformed cap and help on, a process with no CUDA says nothing */
    char *argv[] = {"sh", "-c", "echo hi > /dev/null; true", NULL};
    const char *err = run_child(argv, "VPAGE_CAP=nonsense", "VPAGE_HELP=1");
    cr_assert(strstr(err, "vpage") == NULL, "stderr: %s", err);
}

Test(interpose, bad_cap_refuses_to_run_with_one_line)
{
    setenv("VPAGE_CAP", "16Gb0", 1);
    struct capture k;
    capture_begin(&k);
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    CUresult (*init)(unsigned) = (CUresult(*)(unsigned))dlsym(h, "cuInit");
    CUresult rc = init(0);
    CUresult (*alloc)(CUdeviceptr *, size_t) = (CUresult(*)(CUdeviceptr *, size_t))dlsym(h, "cuMemAlloc_v2");
    CUdeviceptr p;
    CUresult arc = alloc(&p, 4096);
    const char *err = capture_end(&k);
    cr_assert_neq(rc, CUDA_SUCCESS, "cuInit must fail with a malformed VPAGE_CAP");
    cr_assert_eq(arc, CUDA_ERROR_OUT_OF_MEMORY, "allocations must fail too");
    cr_assert(strstr(err, "VPAGE_CAP='16Gb0' is not valid") != NULL, "stderr: %s", err);
    cr_assert(strstr(err, "refusing to run") != NULL, "stderr: %s", err);
}

Test(interpose, help_lists_every_option)
{
    setenv("VPAGE_HELP", "yes", 1);
    setenv("VPAGE_CAP", "2G", 1);
    struct capture k;
    capture_begin(&k);
    struct cu c;
    int rc = cu_load(&c, WAY_PROCADDR);
    const char *err = capture_end(&k);
    cr_assert_eq(rc, 0);
    const char *names[] = {"VPAGE_CAP", "VPAGE_LOG", "VPAGE_STATS", "VPAGE_STATS_FILE", "VPAGE_LIBCUDA",
                           "VPAGE_WARN_MAX", "VPAGE_HELP"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cr_assert(strstr(err, names[i]) != NULL, "%s missing from help: %s", names[i], err);
    cr_assert(strstr(err, "2G") != NULL && strstr(err, "[environment]") != NULL, "help: %s", err);
}
