#!/usr/bin/env python3
"""The table of bench/defaults.sh: one markdown table per stage, a row per setting, a column per
data set with the test ROC-AUC / PR-AUC (median over the seeds) and, for federations, the gap in
ROC-AUC to centralised `fedc train` (the median over the seeds of federated minus centralised on
the same seed's test rows, centralised with the setting --ref names). The last columns rank the
settings: the mean and the largest shortfall from the best setting of the stage on each data set
(ROC-AUC), and the mean shortfall in PR-AUC, so that a setting that is best or near-best
everywhere comes first.

    bench/defaults_table.py RESULTS.tsv [--ref "CENTRAL SETTING"]
"""
import argparse
import collections
import math
import statistics
import sys

CENTRAL_OF = {"german": "german", "tw-iid": "taiwan", "tw-dir": "taiwan", "tw-edu": "taiwan",
              "ulb": "ulb", "synth": "synth"}
ORDER = ["german", "tw-iid", "tw-dir", "tw-edu", "ulb", "synth", "taiwan"]


def short(setting):
    """'--optimizer adam --lr 0.001 ...' -> 'adam lr=0.001 ...' (flags without dashes)."""
    w = setting.split()
    return " ".join(f"{w[i][2:]}={w[i + 1]}" for i in range(0, len(w) - 1, 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--ref", default="--optimizer adam --lr 0.01 --epochs 20 --batch 64 "
                    "--layers 25", help="the centralised setting gaps are measured against "
                    "(default: fedc train's defaults)")
    a = ap.parse_args()
    runs = collections.defaultdict(dict)  # (stage, data, setting) -> seed -> (roc, pr)
    with open(a.results) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 7:
                continue
            stage, data, seed, setting, roc, pr = p[:6]
            if stage in ("fed1", "fed2"):
                stage = "federated"  # one table: fed2 refines fed1
            runs[(stage, data, setting)][seed] = (float(roc), float(pr))
    # The reference of each stage: --ref, and for posw (--pos-weight auto) --ref with it too.
    ref_of = {"posw": a.ref + " --pos-weight auto"}
    stage_order = ["central", "federated", "synth", "posw"]
    stages = sorted({k[0] for k in runs},
                    key=lambda s: stage_order.index(s) if s in stage_order else 9)
    for stage in stages:
        ref_setting = ref_of.get(stage, a.ref)
        ref = {k[1]: v for k, v in runs.items() if k[0] == "central" and k[2] == ref_setting}
        keys = [k for k in runs if k[0] == stage]
        datas = sorted({k[1] for k in keys}, key=lambda d: ORDER.index(d) if d in ORDER else 99)
        settings = sorted({k[2] for k in keys})
        med = {}
        for (_, data, setting) in keys:
            v = [x for x in runs[(stage, data, setting)].values() if not math.isnan(x[0])]
            if v:
                med[(data, setting)] = (statistics.median(x[0] for x in v),
                                        statistics.median(x[1] for x in v), len(v))
        best = {d: (max(med[(d, s)][0] for s in settings if (d, s) in med),
                    max(med[(d, s)][1] for s in settings if (d, s) in med)) for d in datas}
        rank = []
        for s in settings:
            if not all((d, s) in med for d in datas):
                continue
            sr = [best[d][0] - med[(d, s)][0] for d in datas]
            sp = [best[d][1] - med[(d, s)][1] for d in datas]
            rank.append((statistics.mean(sr), max(sr), statistics.mean(sp), s))
        rank.sort()
        seeds = max((m[2] for m in med.values()), default=0)
        what = "fedc train" if stage == "central" else "fedc sim (federated)"
        print(f"\n### stage {stage}: {what}, test ROC-AUC / PR-AUC, median of {seeds} seeds")
        if stage != "central":
            print(f"(gap: federated - centralised ROC-AUC, centralised = fedc train "
                  f"{short(ref_setting)})")
        print("\n| setting | " + " | ".join(datas) + " | mean ROC short | max ROC short | "
              "mean PR short |")
        print("|---|" + "---|" * (len(datas) + 3))
        for mr, xr, mp, s in rank:
            cells = []
            for d in datas:
                roc, pr, _ = med[(d, s)]
                cell = f"{roc:.3f} / {pr:.3f}"
                c = ref.get(CENTRAL_OF.get(d, d))
                if stage != "central" and c:
                    g = [runs[(stage, d, s)][sd][0] - c[sd][0]
                         for sd in runs[(stage, d, s)] if sd in c]
                    if g:
                        cell += f" ({statistics.median(g):+.3f})"
                cells.append(cell)
            print(f"| {short(s)} | " + " | ".join(cells) + f" | {mr:.3f} | {xr:.3f} | {mp:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
