/* fake_cudart.c - a stand-in libcudart.so.13 with nothing in it: a CUDA
 * runtime loaded from a folder of its own, beside which vpage looks for
 * libcupti (tests/check_record.sh). */
__attribute__((visibility("default"))) int fake_cudart_version(void);
__attribute__((visibility("default"))) int fake_cudart_version(void) { return 13000; }
