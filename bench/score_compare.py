#!/usr/bin/env python3
"""PyTorch and onnxruntime side of bench/score_compare.sh: the same models as bench_score.

Reads the models bench_score --export wrote (fedc model files, parsed here from the format that
core/nn/include/fedc/modelfile.h documents: no fedc code is used), builds each as a torch
nn.Sequential with the same weights (standardisation (x - mean) / std first, then Linear + ReLU
layers, then the sigmoid), checks its scores of the exported rows against fedc's (to 1e-5), and
exports it with torch.onnx.export (opset 13, dynamic batch) for onnxruntime, whose scores are
checked the same way. Then, each on one thread:
  - single-row latency: one row per call (torch under torch.inference_mode(); onnxruntime's
    InferenceSession.run), after 2,000 warm-up calls, each call timed alone with
    time.perf_counter_ns; p50, p99 and the mean over --calls calls (the timer costs ~100 ns);
  - batch throughput: rows per second over batches of 4096 rows for at least 1 s.
Output: key=value lines like bench_score's.

  score_compare.py DIR [--calls N]
"""

import argparse
import os
import statistics
import struct
import sys
import time

import numpy as np


def read_fedc_model(path):
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"FEDCMODL":
        sys.exit(f"{path}: not a fedc model file")
    off = 8

    def u32():
        nonlocal off
        v = struct.unpack_from("<I", b, off)[0]
        off += 4
        return v

    version, task, n_classes, hidden_act, n_layers = (u32() for _ in range(5))
    sizes = [u32() for _ in range(n_layers + 1)]
    if u32():
        for _ in range(sizes[0] + 1):
            off += 4 + u32()
    nf = sizes[0]
    mean = np.frombuffer(b, "<f4", nf, off); off += 4 * nf
    std = np.frombuffer(b, "<f4", nf, off); off += 4 * nf
    n_params = struct.unpack_from("<Q", b, off)[0]; off += 8
    params = np.frombuffer(b, "<f4", n_params, off)
    layers, p = [], 0
    for l in range(n_layers):
        i, o = sizes[l], sizes[l + 1]
        w = params[p:p + i * o].reshape(i, o); p += i * o
        bias = params[p:p + o]; p += o
        layers.append((w, bias))
    return dict(task=task, hidden_act=hidden_act, sizes=sizes, mean=mean, std=std, layers=layers)


def torch_model(spec, torch):
    nn = torch.nn
    if spec["task"] != 0 or spec["hidden_act"] != 0:
        sys.exit("score_compare.py builds binary ReLU models only (what bench_score writes)")

    class Standardise(nn.Module):
        def __init__(self, mean, std):
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean.copy()))
            self.register_buffer("std", torch.tensor(std.copy()))

        def forward(self, x):
            return (x - self.mean) / self.std

    mods = [Standardise(spec["mean"], spec["std"])]
    for l, (w, b) in enumerate(spec["layers"]):
        lin = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w.T.copy()))
            lin.bias.copy_(torch.tensor(b.copy()))
        mods.append(lin)
        mods.append(nn.ReLU() if l + 1 < len(spec["layers"]) else nn.Sigmoid())
    return nn.Sequential(*mods).eval()


def latency(fn, rows, calls):
    for i in range(2000):
        fn(rows[i % len(rows)])
    lat = []
    clock = time.perf_counter_ns
    for i in range(calls):
        r = rows[i % len(rows)]
        t0 = clock()
        fn(r)
        lat.append(clock() - t0)
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], statistics.fmean(lat)


def throughput(fn, batch):
    n, t0 = 0, time.perf_counter()
    while True:
        fn(batch)
        n += len(batch)
        t = time.perf_counter() - t0
        if t >= 1.0:
            return n / t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--calls", type=int, default=100000)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
        print("# onnxruntime not importable: its lines are left out", flush=True)
    rows = np.fromfile(os.path.join(a.dir, "rows.f32"), "<f4").reshape(-1, 30)
    big = np.ascontiguousarray(np.tile(rows, (4, 1)))  # 4096 rows
    print(f"# torch {torch.__version__}, onnxruntime {ort.__version__ if ort else '-'}, "
          f"numpy {np.__version__}", flush=True)
    for name in ("small", "wide"):
        spec = read_fedc_model(os.path.join(a.dir, name + ".fedc"))
        arch = "-".join(str(s) for s in spec["sizes"])
        want = np.fromfile(os.path.join(a.dir, name + ".scores"), "<f4")
        model = torch_model(spec, torch)
        with torch.inference_mode():
            got = model(torch.from_numpy(rows)).numpy().ravel()
        err = float(np.max(np.abs(got - want)))
        print(f"check runtime=torch model={arch} max_abs_diff_vs_fedc={err:.3g}", flush=True)
        if err > 1e-5:
            sys.exit(f"torch's {arch} scores differ from fedc's by {err}: not the same model")
        t_rows = [torch.from_numpy(rows[i:i + 1].copy()) for i in range(len(rows))]

        def t_one(x):
            with torch.inference_mode():
                return model(x)

        p50, p99, mean = latency(t_one, t_rows, a.calls)
        print(f"torch_row model={arch} calls={a.calls} p50_ns={p50} p99_ns={p99} "
              f"mean_ns={mean:.0f}", flush=True)
        tb = torch.from_numpy(big)
        print(f"torch_batch model={arch} batch=4096 threads=1 rows_per_s={throughput(t_one, tb):.0f}",
              flush=True)
        if ort is None:
            continue
        onnx_path = os.path.join(a.dir, name + ".onnx")
        torch.onnx.export(model, torch.from_numpy(rows[:1].copy()), onnx_path, opset_version=13,
                          input_names=["x"], output_names=["score"],
                          dynamic_axes={"x": {0: "batch"}, "score": {0: "batch"}})
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": rows})[0].ravel()
        err = float(np.max(np.abs(got - want)))
        print(f"check runtime=onnxruntime model={arch} max_abs_diff_vs_fedc={err:.3g}", flush=True)
        if err > 1e-5:
            sys.exit(f"onnxruntime's {arch} scores differ from fedc's by {err}")
        o_rows = [rows[i:i + 1].copy() for i in range(len(rows))]

        def o_one(x):
            return sess.run(None, {"x": x})

        p50, p99, mean = latency(o_one, o_rows, a.calls)
        print(f"onnxruntime_row model={arch} calls={a.calls} p50_ns={p50} p99_ns={p99} "
              f"mean_ns={mean:.0f}", flush=True)
        print(f"onnxruntime_batch model={arch} batch=4096 threads=1 "
              f"rows_per_s={throughput(o_one, big):.0f}", flush=True)


if __name__ == "__main__":
    main()
