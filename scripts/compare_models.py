"""trainer-feeder's models beside scikit-learn's on the same splits.

    compare_models.py TRAINED_DIR TRAINER_PEAK_RSS_KIB

Reads trainer-feeder's splits and metrics under TRAINED_DIR, fits
scikit-learn's HistGradientBoostingRegressor with its defaults (but a fixed
random_state, for a reproducible early-stopping split), Ridge(alpha=1) on
standardised features with NULLs replaced by the train mean (what
trainer-feeder's ridge does) and the mean, on the same train split and the
threads OMP_NUM_THREADS allows; prints validation and test MAE and fit
seconds side by side.
"""

import json
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(path):
    t = pq.read_table(path)
    names = [n for n in t.column_names if n not in ("pid", "actual_age")]
    cols = []
    for n in names:
        c = t.column(n)
        cols.append(c.cast("float64").to_numpy(zero_copy_only=False))
    return np.column_stack(cols), t.column("actual_age").to_numpy().astype(np.float64)


def main():
    d, rss_kib = sys.argv[1], int(sys.argv[2])
    x, y = load(os.path.join(d, "splits/train/part-00000.parquet"))
    xv, yv = load(os.path.join(d, "splits/validation/part-00000.parquet"))
    xt, yt = load(os.path.join(d, "splits/test/part-00000.parquet"))
    ours = {m["model"]: m for m in json.load(open(os.path.join(d, "models/metrics.json")))["models"]}
    theirs = {
        "mean": DummyRegressor(),
        "ridge": make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(), Ridge(alpha=1.0)),
        "gbdt": HistGradientBoostingRegressor(random_state=42),
    }
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(f"train {len(y):,} rows, validation {len(yv):,}, test {len(yt):,}; {x.shape[1]} features; "
          f"{threads} threads each")
    print(f"{'model':6} {'val MAE ours':>13} {'sklearn':>8} {'ratio':>6}  {'test MAE ours':>13} {'sklearn':>8}  "
          f"{'fit s ours':>10} {'sklearn':>8} {'speed-up':>8}")
    for name, est in theirs.items():
        start = time.perf_counter()
        est.fit(x, y)
        fit = time.perf_counter() - start
        val = mean_absolute_error(yv, est.predict(xv))
        test = mean_absolute_error(yt, est.predict(xt))
        o = ours.get(name)
        if o is None:
            continue
        extra = ""
        if name == "gbdt":
            extra = f"  (trees: ours {o['gbdt']['iterations']}, sklearn {est.n_iter_})"
        print(f"{name:6} {o['validation']['mae']:>13.4f} {val:>8.4f} {o['validation']['mae'] / val:>6.3f}  "
              f"{o['test']['mae']:>13.4f} {test:>8.4f}  {o['fit_seconds']:>10.2f} {fit:>8.2f} "
              f"{fit / max(o['fit_seconds'], 1e-9):>7.2f}x{extra}")
    rows = ours["mean"]["rows"] if "mean" in ours else next(iter(ours.values()))["rows"]
    total = rows["train"] + rows["validation"] + rows["test"]
    print(f"trainer-feeder peak RSS {rss_kib / 1024:.0f} MiB for {total:,} joined rows: "
          f"{rss_kib / 1024 / (total / 1e6):.0f} MiB per million rows")


if __name__ == "__main__":
    main()
