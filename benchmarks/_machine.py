"""This machine's own yardstick, printed by every benchmark so figures from different machines
can be compared: sustained fp32 matmul throughput on SAE-shaped products."""
import os
import platform
import time

import torch


def matmul_gflops(m: int = 1024, k: int = 512, n: int = 2048, seconds: float = 1.0) -> float:
    """fp32 GFLOP/s of [m, k] @ [k, n] on the current device and thread count, best of 3 runs."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b  # warm-up
    best = 0.0
    for _ in range(3):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            a @ b
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9)
    return best


def machine_line() -> str:
    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"fp32 matmul {matmul_gflops():.0f} GFLOP/s ([1024,512]@[512,2048])")


if __name__ == "__main__":
    print(machine_line())
