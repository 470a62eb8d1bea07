"""vpage: run CUDA programs larger than the GPU under a cap (libvpage.so,
preloaded). The command is `vpage run`; see vpage.cli."""
__version__ = "0.1.0"
