"""sgemm-check.py: the system OpenBLAS's sgemm against a float64 reference, for the
kernels OPENBLAS_CORETYPE selects (run once per setting). Prints the core OpenBLAS runs,
the largest relative error and the time of a 1024^3 product."""
import ctypes, random, time, array
lib = ctypes.CDLL("/lib/x86_64-linux-gnu/libopenblas.so.0")
lib.openblas_get_corename.restype = ctypes.c_char_p
def sgemm(m, n, k, a, b):
    c = (ctypes.c_float * (m * n))()
    # cblas_sgemm(RowMajor=101, NoTrans=111, NoTrans=111, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
    lib.cblas_sgemm(101, 111, 111, m, n, k, ctypes.c_float(1.0), a, k, b, n, ctypes.c_float(0.0), c, n)
    return c
random.seed(1)
worst = 0.0
for (m, n, k) in [(1, 300, 257), (2, 512, 384), (7, 129, 65), (64, 96, 200), (33, 47, 513)]:
    A = [random.uniform(-1, 1) for _ in range(m * k)]; B = [random.uniform(-1, 1) for _ in range(k * n)]
    c = sgemm(m, n, k, (ctypes.c_float * len(A))(*A), (ctypes.c_float * len(B))(*B))
    for i in range(m):
        for j in range(n):
            ref = sum(A[i * k + t] * B[t * n + j] for t in range(k))
            worst = max(worst, abs(c[i * n + j] - ref) / max(1.0, abs(ref)))
N = 1024
A = (ctypes.c_float * (N * N))(*([0.5] * (N * N))); B = (ctypes.c_float * (N * N))(*([0.25] * (N * N)))
sgemm(N, N, N, A, B)
t = time.perf_counter(); [sgemm(N, N, N, A, B) for _ in range(5)]; dt = (time.perf_counter() - t) / 5
print(f"core {lib.openblas_get_corename().decode()}: worst relative error {worst:.2e}, 1024^3 sgemm {dt*1e3:.1f} ms ({2*N**3/dt/1e9:.1f} GFLOP/s)")
