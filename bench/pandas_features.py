"""The features of `fedc features` computed with pandas, timed, and compared with fedc's output.

Used by bench/bench_features.sh. The spec is the issue's:

    --calendar --window 'CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;
                         TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:delay=7'

computed as the fraud detection handbook defines it (Le Borgne et al. 2022, "Reproducible Machine
Learning for Credit Card Fraud Detection - Practical Handbook", ch. 3.4, "Baseline feature
transformation"):
  - TX_DURING_WEEKEND: the transaction is on a Saturday or Sunday; TX_DURING_NIGHT: its hour is
    0 to 6 (both included). fedc calls them TX_WEEKEND and TX_NIGHT.
  - Customer spending behaviour: per customer, the number of transactions and their mean amount
    over the last D days, D = 1, 7, 30: a time-based rolling window (t - D, t] over the customer's
    transactions sorted by time.
  - Terminal risk: per terminal, with a delay L = 7 days (labels are known a week later), the
    number of transactions in (t - L - D, t - L] and the share of frauds among them, obtained as
    the count (sum) over (t - L - D, t] minus the count (sum) over (t - L, t]; a rate over no
    transaction is 0.
pandas' time-based rolling windows are closed on the right: a row's window holds the rows before
it in the frame with equal timestamps but not those after it, which is fedc's "equal times count in
file order" when each group keeps the file's order (a stable sort); so ties need not be avoided.

Written for this benchmark (no code taken from the handbook). Timings: read_csv, the features, and
to_csv of every input column plus the features, each timed, like fedc features' end-to-end run.
"""

import argparse
import sys
import time

import numpy as np
import pandas as pd

CUSTOMER_DAYS = (1, 7, 30)
TERMINAL_DAYS = (1, 7, 30)
DELAY = 7


def rolling_sums(keys, times, values, days_list):
    """For each window length in days_list, per row: the sum of each column of values over the
    same key's rows with time in (t - D, t], ties in frame order. Returns {D: DataFrame}."""
    frame = pd.DataFrame(values)
    frame["_key"] = keys
    frame["_t"] = times
    # stable: rows of one key and time keep the file's order
    frame = frame.sort_values(["_key", "_t"], kind="stable")
    grouped = frame.groupby("_key", sort=False)
    cols = list(values.keys())
    out = {}
    rows = frame.index.to_numpy()  # the file's row numbers, in the sorted order
    back = np.empty(len(rows), dtype=np.int64)
    back[rows] = np.arange(len(rows))
    for d in days_list:
        r = grouped.rolling(f"{d}D", on="_t")[cols].sum()
        # the result is indexed by (key, time), one row per row of the sorted frame, in its
        # order (the groups in the order they appear, each in the frame's order): checked, then
        # put back in file order
        if not (np.array_equal(r.index.get_level_values(0).to_numpy(), frame["_key"].to_numpy())
                and np.array_equal(r.index.get_level_values(-1).to_numpy(),
                                   frame["_t"].to_numpy())):
            raise SystemExit("pandas_features: groupby-rolling's rows are not the frame's")
        out[d] = pd.DataFrame(r.to_numpy()[back], columns=cols)
    return out


def features(df, time_col):
    t = pd.to_datetime(df[time_col], format="%Y-%m-%d %H:%M:%S")
    out = {}
    out["TX_WEEKEND"] = (t.dt.day_of_week >= 5).astype(np.int64)
    out["TX_NIGHT"] = (t.dt.hour <= 6).astype(np.int64)
    n = len(df)
    ones = np.ones(n)

    cust = rolling_sums(df["CUSTOMER_ID"].to_numpy(), t,
                        {"n": ones, "amt": df["TX_AMOUNT"].to_numpy(np.float64)}, CUSTOMER_DAYS)
    for d in CUSTOMER_DAYS:
        cnt = cust[d]["n"].to_numpy()
        out[f"CUSTOMER_ID_COUNT_{d}D"] = cnt.astype(np.int64)
        out[f"CUSTOMER_ID_MEAN_TX_AMOUNT_{d}D"] = cust[d]["amt"].to_numpy() / cnt

    lengths = sorted({DELAY} | {DELAY + d for d in TERMINAL_DAYS})
    term = rolling_sums(df["TERMINAL_ID"].to_numpy(), t,
                        {"n": ones, "fraud": df["TX_FRAUD"].to_numpy(np.float64)}, lengths)
    for d in TERMINAL_DAYS:
        cnt = term[DELAY + d]["n"].to_numpy() - term[DELAY]["n"].to_numpy()
        frauds = term[DELAY + d]["fraud"].to_numpy() - term[DELAY]["fraud"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(cnt > 0, frauds / np.where(cnt > 0, cnt, 1), 0.0)
        out[f"TERMINAL_ID_COUNT_{d}D"] = np.rint(cnt).astype(np.int64)
        out[f"TERMINAL_ID_RATE_TX_FRAUD_{d}D"] = rate
    return pd.DataFrame(out, index=df.index)


def compare(mine, theirs, rtol):
    """Counts and calendar columns equal, the others within rtol relative. Returns failures."""
    bad = 0
    for col in mine.columns:
        if col not in theirs.columns:
            print(f"compare: fedc's output lacks {col}")
            bad += 1
            continue
        a = mine[col].to_numpy(np.float64)
        b = theirs[col].to_numpy(np.float64)
        if "_COUNT_" in col or col in ("TX_WEEKEND", "TX_NIGHT"):
            off = np.flatnonzero(a != b)
        else:
            off = np.flatnonzero(np.abs(a - b) > rtol * np.maximum(np.abs(a), np.abs(b)))
        if len(off):
            i = off[0]
            print(f"compare: {col}: {len(off)} rows differ, first row {i}: pandas {a[i]!r}, "
                  f"fedc {b[i]!r}")
            bad += 1
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="raw transactions (features_gen's columns)")
    ap.add_argument("--out", required=True, help="where pandas' output goes")
    ap.add_argument("--fedc-out", help="fedc features' output, compared with pandas'")
    ap.add_argument("--rtol", type=float, default=1e-9)
    a = ap.parse_args()

    c0 = time.process_time()
    t0 = time.perf_counter()
    df = pd.read_csv(a.data)
    t1 = time.perf_counter()
    feats = features(df, "TX_DATETIME")
    t2 = time.perf_counter()
    pd.concat([df, feats], axis=1).to_csv(a.out, index=False)
    t3 = time.perf_counter()
    c3 = time.process_time()
    n = len(df)
    print(f"pandas {pd.__version__}: rows {n} read_csv {t1 - t0:.3f} s features {t2 - t1:.3f} s "
          f"to_csv {t3 - t2:.3f} s total {t3 - t0:.3f} s cpu {c3 - c0:.3f} s "
          f"rows_per_s {n / (t3 - t0):.0f} "
          f"features_rows_per_s {n / (t2 - t1):.0f}")
    if a.fedc_out:
        theirs = pd.read_csv(a.fedc_out)
        if len(theirs) != n:
            print(f"compare: fedc wrote {len(theirs)} rows, the input has {n}")
            return 1
        for col in df.columns:  # the input columns come back as they were
            if not df[col].equals(theirs[col]):
                print(f"compare: input column {col} differs in fedc's output")
                return 1
        bad = compare(feats, theirs, a.rtol)
        print(f"compare: {len(feats.columns)} feature columns x {n} rows: "
              f"{'identical' if bad == 0 else f'{bad} columns differ'} (counts and calendar "
              f"exactly, means and rates within {a.rtol:g} relative)")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
