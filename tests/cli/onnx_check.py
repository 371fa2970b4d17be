"""Scores rows with onnxruntime on a graph written by `fedc export --format onnx` and compares
every score with fedc's own (tests/cli/test_onnx.sh; run with the python of
scripts/python-venv.sh).

    onnx_check.py NAME MODEL.onnx ROWS.csv FEDC_SCORES.csv

ROWS.csv holds raw feature rows (no header) and ROWS.csv.names the model's feature names, one a
line, both written by tests/cli/onnx_fixture from the fedc model file; FEDC_SCORES.csv holds
fedc_model_predict's scores of the same rows. Checks, each with a message naming NAME:
  - ModelProto's ir_version (field 1) is 7 and its opset_import (field 8) imports the standard
    operator set ("" domain) at version 13 or later, read from the bytes;
  - the graph's interface: input "input" float [N, F] with N symbolic, output "score" float
    [N, W] (W = fedc's score columns), producer "fedc", the feature names in the metadata and in
    the doc_string equal to the model file's;
  - every score: |onnxruntime - fedc| <= 1e-5 * max(1, |fedc|), over all rows in one batch and
    again one row at a time for the first rows (the batch dimension is dynamic).
Prints one line of figures and exits 0, or prints "test_onnx: FAIL: NAME: ..." and exits 1.
"""

import json
import sys

import numpy as np
import onnxruntime as ort

TOL = 1e-5
IR_VERSION, MIN_OPSET = 7, 13


def wire_fields(buf):
    """The top-level fields of a protobuf message: (field number, wire type, value) with value an
    int (varint, fixed) or bytes (length-delimited). Protobuf's wire format, read by hand so that
    the IR version and operator set are checked without fedc's .proto or the onnx package."""
    out, i = [], 0

    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    while i < len(buf):
        key = varint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            out.append((field, wt, varint()))
        elif wt == 2:
            n = varint()
            out.append((field, wt, buf[i:i + n]))
            i += n
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            out.append((field, wt, int.from_bytes(buf[i:i + n], "little")))
            i += n
        else:
            raise ValueError(f"wire type {wt} at byte {i}")
    return out


def fail(name, msg):
    print(f"test_onnx: FAIL: {name}: {msg}")
    sys.exit(1)


def main():
    if len(sys.argv) != 5:
        print("usage: onnx_check.py NAME MODEL.onnx ROWS.csv FEDC_SCORES.csv", file=sys.stderr)
        sys.exit(2)
    name, onnx_path, rows_path, scores_path = sys.argv[1:]
    with open(rows_path + ".names", encoding="utf-8") as f:
        names = f.read().split("\n")[:-1]
    x = np.loadtxt(rows_path, delimiter=",", dtype=np.float32, ndmin=2)
    want = np.loadtxt(scores_path, delimiter=",", dtype=np.float64, ndmin=2)
    if x.shape[1] != len(names) or want.shape[0] != x.shape[0]:
        fail(name, f"fixture shapes disagree: rows {x.shape}, names {len(names)}, "
             f"scores {want.shape}")

    with open(onnx_path, "rb") as f:
        top = wire_fields(f.read())
    ir = [v for (fn, wt, v) in top if fn == 1 and wt == 0]
    opsets = [dict((fn, v) for (fn, _, v) in wire_fields(v)) for (fn, wt, v) in top
              if fn == 8 and wt == 2]
    std_opset = [o.get(2, 0) for o in opsets if o.get(1, b"") == b""]
    if ir != [IR_VERSION] or len(std_opset) != 1 or std_opset[0] < MIN_OPSET:
        fail(name, f"expected ir_version {IR_VERSION} and the standard operator set >= "
             f"{MIN_OPSET}, got ir_version {ir} and operator sets {opsets}")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime refuses the file: report it as a failure of the export
        fail(name, f"onnxruntime cannot load {onnx_path}: {e}")

    ins, outs = sess.get_inputs(), sess.get_outputs()
    if [i.name for i in ins] != ["input"] or [o.name for o in outs] != ["score"]:
        fail(name, f"expected input 'input' and output 'score', got {[i.name for i in ins]} "
             f"and {[o.name for o in outs]}")
    if ins[0].type != "tensor(float)" or outs[0].type != "tensor(float)":
        fail(name, f"expected float tensors, got {ins[0].type} and {outs[0].type}")
    if not isinstance(ins[0].shape[0], str) or ins[0].shape[1] != len(names):
        fail(name, f"expected input shape [N, {len(names)}] with N symbolic, got {ins[0].shape}")
    if not isinstance(outs[0].shape[0], str) or outs[0].shape[1] != want.shape[1]:
        fail(name, f"expected output shape [N, {want.shape[1]}], got {outs[0].shape}")

    meta = sess.get_modelmeta()
    if meta.producer_name != "fedc":
        fail(name, f"producer_name is '{meta.producer_name}', expected 'fedc'")
    got_names = json.loads(meta.custom_metadata_map.get("feature_names", "null"))
    if got_names != names:
        fail(name, f"metadata feature_names {got_names} differ from the model's {names}")
    for j, n in enumerate(names):
        if f"  {j} {n}\n" not in meta.description:
            fail(name, f"the doc_string does not list feature {j} '{n}'")

    got = sess.run(["score"], {"input": x})[0].astype(np.float64)
    if got.shape != want.shape:
        fail(name, f"onnxruntime's scores have shape {got.shape}, fedc's {want.shape}")
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    if not np.all(np.isfinite(got)) or err[worst] > TOL:
        fail(name, f"onnxruntime's scores differ from fedc's: row {worst[0]} column {worst[1]}: "
             f"onnxruntime {got[worst]:.9g}, fedc {want[worst]:.9g} (relative to max(1, |fedc|): "
             f"{err[worst]:.3g} > {TOL:g}; {int(np.sum(err > TOL))} of {err.size} scores over)")
    for i in range(min(5, x.shape[0])):
        one = sess.run(["score"], {"input": x[i:i + 1]})[0].astype(np.float64)
        if one.shape != (1, want.shape[1]) or np.max(np.abs(one - got[i:i + 1])) > TOL:
            fail(name, f"row {i} scored alone gives {one}, in the batch {got[i]}")
    print(f"test_onnx: {name}: {x.shape[0]} rows x {want.shape[1]} scores agree, largest "
          f"difference {err[worst]:.3g} (tolerance {TOL:g}; onnxruntime {ort.__version__})")


if __name__ == "__main__":
    main()
