#!/usr/bin/env python3
"""PyTorch baseline for fedc's dense-network benchmark (optional; the product is C).

What it measures
  Training mode (default): samples per second of full training steps
      zero_grad(set_to_none) -> forward -> BCEWithLogitsLoss(pos_weight) -> backward -> Adam step
  for the MLPs fedc trains (30-64-32-1 and 30-256-256-1: ReLU hidden layers, one output logit,
  Adam lr 1e-3, float32) at batch sizes 64, 256 and 1024, on synthetic data the size of the
  public card-fraud set: 284,807 rows x 30 standard-normal features, 492 positives (~0.17%),
  fixed seed; pos_weight = negatives / positives, as fedc_dataset_pos_weight computes it.
  Each epoch is a normal training loop without DataLoader: torch.randperm over all rows, then
  index_select of each mini-batch (the last, partial batch included).
  Per configuration: ~200 warm-up steps (also used to estimate the step time), then 3 timed
  runs of E whole epochs each, E = the fewest epochs that take >= --min-time seconds (2 s);
  samples/s = E * 284,807 / elapsed. The median of the 3 runs is printed.

  --gemm mode: GFLOP/s (2*M*K*N / time) of torch.mm for the products fedc's dense kernel
  computes, per model, layer (in->out) and batch B in 64, 256, 1024:
      fwd    X(B,in)  @ W(in,out)         both contiguous
      dgrad  dY(B,out) @ Wt(out,in)       both contiguous (fedc transposes W explicitly)
      wgrad  X(B,in).t() @ dY(B,out)      transposed view of X, as fedc and torch do
  plus the square 256x256x256. shape=MxKxN means (M x K) @ (K x N). Each shape: calls
  repeated for >= --gemm-time seconds, 3 times, median reported.

Threads: --threads N sets torch.set_num_threads(N), torch.set_num_interop_threads(1) and the
OpenBLAS thread count (OPENBLAS_NUM_THREADS before torch loads, then openblas_set_num_threads),
since Debian's torch calls OpenBLAS, whose own thread pool torch.set_num_threads does not size;
--blas-threads M gives OpenBLAS a different count.

Output: one line per configuration, e.g.
  torch model=30-64-32-1 batch=256 threads=1 samples_per_s=612345
  torch_gemm shape=256x256x256 threads=1 gflops=123.4 model=- layer=- batch=- op=square
Lines starting with '#' are information (versions, OpenBLAS kernel, run details).

Run with Debian's python (python3-torch): /usr/bin/python3 bench/torch_mlp.py [--quick]
"""

import argparse
import ctypes
import math
import os
import statistics
import sys
import time

N_ROWS = 284_807
N_FEATURES = 30
N_POSITIVE = 492
MODELS = ("30-64-32-1", "30-256-256-1")
BATCHES = (64, 256, 1024)


def parse_args():
    p = argparse.ArgumentParser(
        description="PyTorch MLP training / GEMM throughput baseline for fedc benchmarks.")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads for torch and OpenBLAS (default 1)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="OpenBLAS threads (default: same as --threads)")
    p.add_argument("--gemm", action="store_true",
                   help="time torch.mm for fedc's dense-kernel shapes instead of training")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated layer sizes (default %(default)s)")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)),
                   help="comma-separated batch sizes (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; median printed (default 3)")
    p.add_argument("--warmup-steps", type=int, default=200, help="warm-up steps (default 200)")
    p.add_argument("--min-time", type=float, default=2.0,
                   help="training: minimum seconds per timed run (default 2.0)")
    p.add_argument("--gemm-time", type=float, default=0.25,
                   help="gemm: minimum seconds per timed run (default 0.25)")
    p.add_argument("--rows", type=int, default=N_ROWS, help="rows of synthetic data (default %(default)s)")
    p.add_argument("--seed", type=int, default=1234, help="data and init seed (default 1234)")
    p.add_argument("--adam-foreach", action="store_true",
                   help="use Adam(foreach=True) (multi-tensor path; default: single-tensor)")
    p.add_argument("--quick", action="store_true",
                   help="short run for smoke tests: 1 repeat, 20 warm-up steps, 0.2 s timed "
                        "(training runs one epoch on 1/10 of the rows)")
    a = p.parse_args()
    if a.blas_threads is None:
        a.blas_threads = a.threads
    if min(a.threads, a.blas_threads, a.repeats) < 1 or a.warmup_steps < 0:
        p.error("--threads, --blas-threads and --repeats must be >= 1, --warmup-steps >= 0")
    if a.quick:
        a.repeats, a.warmup_steps, a.min_time, a.gemm_time = 1, 20, 0.2, 0.02
        a.rows = min(a.rows, N_ROWS // 10)
    try:
        a.models = [tuple(int(s) for s in m.split("-")) for m in a.models.split(",") if m]
        a.batches = [int(b) for b in a.batches.split(",") if b]
    except ValueError:
        p.error("--models like 30-64-32-1,30-256-256-1 and --batches like 64,256")
    if any(len(m) < 2 or min(m) < 1 for m in a.models) or any(b < 1 for b in a.batches):
        p.error("bad --models or --batches")
    return a


def openblas_handle():
    """The OpenBLAS library torch loaded (through libblas.so.3), or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {l.split()[-1] for l in f if "libopenblas" in l}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_num_threads.restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            continue
    return None


def make_model(torch, sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def bench_training(torch, args, name_of):
    g = torch.Generator().manual_seed(args.seed)
    n = args.rows
    x = torch.randn(n, N_FEATURES, generator=g, dtype=torch.float32)
    y = torch.zeros(n, 1, dtype=torch.float32)
    n_pos = max(1, round(N_POSITIVE * n / N_ROWS))
    y[torch.randperm(n, generator=g)[:n_pos]] = 1.0
    pos_weight = torch.tensor([(n - n_pos) / n_pos], dtype=torch.float32)
    print(f"# data rows={n} features={N_FEATURES} positives={n_pos} "
          f"pos_weight={pos_weight.item():.2f} seed={args.seed}")
    print(f"# timing: {args.warmup_steps} warm-up steps, then {args.repeats} runs of whole epochs "
          f"(randperm + index_select + steps), each >= {args.min_time} s; median printed")

    for sizes in args.models:
        if sizes[0] != N_FEATURES or sizes[-1] != 1:
            sys.exit(f"model {name_of(sizes)}: must have {N_FEATURES} inputs and 1 output")
        for batch in args.batches:
            torch.manual_seed(args.seed)
            model = make_model(torch, sizes)
            loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=args.adam_foreach)

            def step(idx):
                xb = torch.index_select(x, 0, idx)
                yb = torch.index_select(y, 0, idx)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                return loss

            def epoch():
                perm = torch.randperm(n)
                loss = None
                for idx in torch.split(perm, batch):
                    loss = step(idx)
                return loss

            # Warm-up (also estimates the time of one step).
            steps_per_epoch = math.ceil(n / batch)
            warm = max(1, args.warmup_steps)
            perm = torch.randperm(n)
            t0 = time.perf_counter()
            for i in range(warm):
                j = (i % steps_per_epoch) * batch
                step(perm[j:j + batch])
            step_s = (time.perf_counter() - t0) / warm
            epochs = 1 if args.quick else max(1, math.ceil(args.min_time /
                                                             (step_s * steps_per_epoch)))

            rates = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                for _ in range(epochs):
                    loss = epoch()
                dt = time.perf_counter() - t0
                rates.append(epochs * n / dt)
            if not torch.isfinite(loss).item():
                sys.exit(f"model {name_of(sizes)} batch={batch}: loss is not finite")
            rate = statistics.median(rates)
            print(f"torch model={name_of(sizes)} batch={batch} threads={args.threads} "
                  f"samples_per_s={rate:.0f} epochs_per_run={epochs} "
                  f"runs={','.join(f'{r:.0f}' for r in rates)}", flush=True)


def time_mm(torch, a, b, min_time, repeats):
    c = torch.empty(a.shape[0], b.shape[1], dtype=torch.float32)
    for _ in range(3):
        torch.mm(a, b, out=c)
    # Calibrate: calls needed for min_time.
    iters, dt = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.mm(a, b, out=c)
        dt = time.perf_counter() - t0
        if dt >= min_time / 4 or iters >= 1 << 24:
            break
        iters *= 4
    iters = max(1, math.ceil(iters * min_time / max(dt, 1e-9)))
    rates = []
    flop = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.mm(a, b, out=c)
        rates.append(flop * iters / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def bench_gemm(torch, args, name_of):
    print(f"# timing: torch.mm(out=) repeated >= {args.gemm_time} s, {args.repeats} runs, median; "
          "shape=MxKxN is (MxK)@(KxN); wgrad A is a transposed view")
    g = torch.Generator().manual_seed(args.seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32)

    def report(m, k, n_, gf, model, layer, batch, op):
        print(f"torch_gemm shape={m}x{k}x{n_} threads={args.threads} gflops={gf:.1f} "
              f"model={model} layer={layer} batch={batch} op={op}", flush=True)

    for sizes in args.models:
        for li in range(len(sizes) - 1):
            fin, fout = sizes[li], sizes[li + 1]
            layer = f"{fin}->{fout}"
            for b in args.batches:
                xb, w, dy, wt = rnd(b, fin), rnd(fin, fout), rnd(b, fout), rnd(fout, fin)
                cases = (("fwd", xb, w), ("dgrad", dy, wt), ("wgrad", rnd(b, fin).t(), dy))
                for op, a_, b_ in cases:
                    gf = time_mm(torch, a_, b_, args.gemm_time, args.repeats)
                    report(a_.shape[0], a_.shape[1], b_.shape[1], gf, name_of(sizes), layer, b, op)
    gf = time_mm(torch, rnd(256, 256), rnd(256, 256), args.gemm_time, args.repeats)
    report(256, 256, 256, gf, "-", "-", "-", "square")


def main():
    args = parse_args()
    # OpenBLAS reads its thread count when torch loads it; set it first, then check below.
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    try:
        import torch
    except ImportError as e:
        sys.exit(f"torch_mlp.py: cannot import torch ({e}); run scripts/install-deps.sh --bench "
                 "and use /usr/bin/python3")
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (only possible before any inter-op work)
    ob = openblas_handle()
    if ob is not None:
        ob.openblas_set_num_threads(args.blas_threads)
        blas = (f"openblas_core={ob.openblas_get_corename().decode()} "
                f"openblas_threads={ob.openblas_get_num_threads()} "
                f"openblas_config=\"{ob.openblas_get_config().decode()}\"")
    else:
        blas = "openblas=not-loaded"
    print(f"# torch {torch.__version__} threads={torch.get_num_threads()} "
          f"interop={torch.get_num_interop_threads()} {blas} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')} "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}", flush=True)

    def name_of(sizes):
        return "-".join(map(str, sizes))

    if args.gemm:
        with torch.no_grad():
            bench_gemm(torch, args, name_of)
    else:
        bench_training(torch, args, name_of)


if __name__ == "__main__":
    main()
