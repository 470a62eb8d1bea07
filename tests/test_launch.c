/* test_launch.c - launch hooks and the kernel registry; the stats dump. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/wait.h>

#include "helpers.h"

static const char *stats_json(void)
{
    static char buf[65536];
    size_t (*f)(char *, size_t) = (size_t(*)(char *, size_t))dlsym(RTLD_DEFAULT, "vpage_stats_json");
    cr_assert_not_null(f);
    size_t need = f(buf, sizeof buf);
    cr_assert_lt(need, sizeof buf);
    return buf;
}

TEST_EACH_WAY(launch, module_functions_are_named_and_counted)
{
    struct cu c;
    load_or_die(&c, w);
    CUmodule mod;
    CU_OK(c.cuModuleLoadData(&mod, "vector_add:3,reduce_sum:5"));
    CUfunction add, red;
    CU_OK(c.cuModuleGetFunction(&add, mod, "vector_add"));
    CU_OK(c.cuModuleGetFunction(&red, mod, "reduce_sum"));
    void *args[5] = {0};
    for (int i = 0; i < 7; i++) CU_OK(c.cuLaunchKernel(add, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
    CUlaunchConfig cfg = {.gridDimX = 1, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 1, .blockDimY = 1, .blockDimZ = 1};
    for (int i = 0; i < 3; i++) CU_OK(c.cuLaunchKernelEx(&cfg, red, args, NULL));
    CU_OK(c.cuLaunchCooperativeKernel(red, 1, 1, 1, 1, 1, 1, 0, NULL, args));
    const char *j = stats_json();
    cr_assert(strstr(j, "{\"name\": \"vector_add\", \"launches\": 7, \"params\": 3}") != NULL, "%s", j);
    cr_assert(strstr(j, "{\"name\": \"reduce_sum\", \"launches\": 4, \"params\": 5}") != NULL, "%s", j);
    cr_assert(strstr(j, "\"cuLaunchKernel\": {\"calls\": 7") != NULL, "%s", j);
}

Test(launch, library_kernels_launched_as_functions_are_named)
{
    /* ATen and cuBLAS launch a CUkernel cast to CUfunction */
    struct cu c;
    load_or_die(&c, WAY_PROCADDR);
    CUlibrary lib;
    CU_OK(c.cuLibraryLoadData(&lib, "gemm_kernel:9,elementwise:2", NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    CU_OK(c.cuLibraryGetKernel(&k, lib, "gemm_kernel"));
    void *args[9] = {0};
    for (int i = 0; i < 5; i++) CU_OK(c.cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    /* and through cuKernelGetFunction, which gives another handle */
    CUkernel k2;
    CU_OK(c.cuLibraryGetKernel(&k2, lib, "elementwise"));
    CUfunction f2;
    CU_OK(c.cuKernelGetFunction(&f2, k2));
    CU_OK(c.cuLaunchKernel(f2, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    const char *j = stats_json();
    cr_assert(strstr(j, "{\"name\": \"gemm_kernel\", \"launches\": 5, \"params\": 9}") != NULL, "%s", j);
    cr_assert(strstr(j, "{\"name\": \"elementwise\", \"launches\": 1, \"params\": 2}") != NULL, "%s", j);
}

Test(launch, unregistered_handles_are_named_at_first_launch)
{
    /* a handle vpage never saw created (made before the preload took over) */
    struct cu c;
    load_or_die(&c, WAY_DLSYM);
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    void *(*fake_sym)(const char *) = (void *(*)(const char *))dlsym(h, "fake_cuda_sym");
    cr_assert_not_null(fake_sym);
    CUresult (*real_get)(CUkernel *, CUlibrary, const char *) =
        (CUresult(*)(CUkernel *, CUlibrary, const char *))fake_sym("cuLibraryGetKernel");
    cr_assert_str_eq(lib_of((void *)real_get), "libcuda.so.1");
    CUlibrary lib;
    CU_OK(c.cuLibraryLoadData(&lib, "hidden:4", NULL, NULL, 0, NULL, NULL, 0));
    CUkernel k;
    CU_OK(real_get(&k, lib, "hidden"));
    void *args[4] = {0};
    CU_OK(c.cuLaunchKernel((CUfunction)k, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    const char *j = stats_json();
    cr_assert(strstr(j, "{\"name\": \"hidden\", \"launches\": 1, \"params\": 4}") != NULL, "%s", j);
}

Test(launch, graph_launches_pass_through)
{
    struct cu c;
    load_or_die(&c, WAY_LINKED);
    CU_OK(c.cuGraphLaunch((CUgraphExec)(uintptr_t)0x1234, NULL));
    const char *j = stats_json();
    cr_assert(strstr(j, "\"cuGraphLaunch\": {\"calls\": 1") != NULL, "%s", j);
}

Test(launch, stats_file_and_table_at_exit)
{
    char path[] = "/tmp/vpage-stats-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    struct capture k;
    capture_begin(&k);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("VPAGE_STATS", "on", 1);
        setenv("VPAGE_STATS_FILE", path, 1);
        setenv("VPAGE_CAP", "1G", 1);
        struct cu c;
        if (cu_load(&c, WAY_PROCADDR)) _exit(3);
        CUdeviceptr p;
        if (c.cuMemAlloc(&p, 100 * MiB)) _exit(4);
        exit(0); /* destructors run: the dump happens here */
    }
    int status;
    waitpid(pid, &status, 0);
    const char *err = capture_end(&k);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert(strstr(err, "vpage stats") != NULL, "stderr: %s", err);
    cr_assert(strstr(err, "cuMemAlloc_v2") != NULL, "stderr: %s", err);
    cr_assert(strstr(err, "100.00 MiB") != NULL, "stderr: %s", err);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    cr_assert(strstr(buf, "\"total\": {\"current\": 104857600, \"peak\": 104857600}") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"cap\": 1073741824") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"cuMemAlloc_v2\": {\"calls\": 1, \"failed\": 0, \"refused\": 0, \"bytes\": 104857600, "
                          "\"current\": 104857600, \"peak\": 104857600}") != NULL,
              "%s", buf);
}
