"""OpenBLAS under an address-space cap: its work buffers are mapped before the cap is set.

OpenBLAS maps a 32 MB work buffer when a product starts while its others are in use; when
that fails it prints its own line and ends the process with status 1, past any handler
(``songmap analyze --max-memory`` just above the loaded size: 2 of 40 runs). After
``map_blas_buffers`` the same burst of products under a cap with no room for a buffer
runs; without it (the control) OpenBLAS ends the process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="RLIMIT_AS and VmSize are Linux's")

BURST = textwrap.dedent("""
    import os, resource, sys, threading
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # as the CLI loads numpy
    import numpy as np
    from threadpoolctl import threadpool_info
    from songmap.limits import BLAS_CALLERS_PER_ANALYSIS, map_blas_buffers

    if not any(lib["internal_api"] == "openblas" for lib in threadpool_info()):
        print("not openblas")
        sys.exit(0)
    if sys.argv[1] == "mapped":
        map_blas_buffers()
    n = BLAS_CALLERS_PER_ANALYSIS
    a = np.ones((1024, 1024), dtype=np.float32)
    outs = [np.empty_like(a) for _ in range(n)]  # nothing of numpy's allocated under the cap
    threading.stack_size(1 << 18)
    start = threading.Barrier(n)

    def product(i):
        start.wait()
        for _ in range(10):  # products that last, so that the threads surely overlap in BLAS
            np.matmul(a, a, out=outs[i])

    with open("/proc/self/status") as f:
        vm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    # room for the threads' stacks, not for one more 32 MB buffer
    resource.setrlimit(resource.RLIMIT_AS, ((vm_kb + 16 * 1024) * 1024, resource.RLIM_INFINITY))
    threads = [threading.Thread(target=product, args=(i,)) for i in range(1, n)]
    for t in threads:
        t.start()
    product(0)
    for t in threads:
        t.join()
    print("products done")
""")


def burst(mode: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    return subprocess.run([sys.executable, "-c", BURST, mode], capture_output=True, text=True,
                          timeout=60, env=env)


def test_buffers_mapped_before_the_cap_serve_a_burst_of_products_under_it():
    proc = burst("mapped")
    if proc.stdout.strip() == "not openblas":
        pytest.skip("numpy's BLAS is not OpenBLAS")
    assert proc.returncode == 0 and "products done" in proc.stdout, proc.stderr


def test_control_without_them_openblas_ends_the_process():
    proc = burst("control")
    if proc.stdout.strip() == "not openblas":
        pytest.skip("numpy's BLAS is not OpenBLAS")
    # its exit status is 1, or a segfault while it tears down (2 of 40 runs)
    assert proc.returncode != 0 and "OpenBLAS" in proc.stderr, proc.stderr
    assert "products done" not in proc.stdout
