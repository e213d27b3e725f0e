"""Models trained the way data teams train them, for batch-predictor's test.

    foreign_models.py TRAIN_PARQUET FEATURES_DIR OUT_DIR

Trains a LightGBM and an XGBoost regressor on trainer-feeder's train split
(every column but pid and actual_age is a feature, NULL as NaN), saves them
in the libraries' own formats (OUT_DIR/lightgbm.txt, OUT_DIR/xgboost.json),
and writes the libraries' own predictions for every row of the features
table under FEATURES_DIR (feature-parser's output, rejected cells and NULLs
included) to OUT_DIR/expected.csv: pid,lightgbm,xgboost.
"""

import glob
import os
import sys

import lightgbm as lgb
import numpy as np
import pyarrow.parquet as pq
import xgboost as xgb


def matrix(table, names):
    cols = []
    for n in names:
        c = table.column(n).to_numpy(zero_copy_only=False)
        cols.append(np.array([np.nan if v is None else float(v) for v in c], dtype=np.float64)
                    if c.dtype == object else c.astype(np.float64))
    return np.column_stack(cols)


def main():
    train_path, features_dir, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    train = pq.read_table(train_path)
    names = [n for n in train.column_names if n not in ("pid", "actual_age")]
    x = matrix(train, names)
    y = train.column("actual_age").to_numpy().astype(np.float64)

    booster = lgb.train(
        {"objective": "regression", "num_leaves": 15, "learning_rate": 0.2, "min_data_in_leaf": 10,
         "verbose": -1, "num_threads": 2, "deterministic": True, "seed": 1},
        lgb.Dataset(x, y, feature_name=names),
        num_boost_round=25,
    )
    booster.save_model(os.path.join(out, "lightgbm.txt"))

    dtrain = xgb.DMatrix(x, label=y, feature_names=names)
    model = xgb.train({"objective": "reg:squarederror", "max_depth": 5, "eta": 0.3, "tree_method": "hist",
                       "nthread": 2, "seed": 1}, dtrain, num_boost_round=25)
    model.save_model(os.path.join(out, "xgboost.json"))

    files = sorted(glob.glob(os.path.join(features_dir, "**", "*.parquet"), recursive=True))
    files = [f for f in files if "/_" not in f[len(features_dir):]]
    with open(os.path.join(out, "expected.csv"), "w") as f:
        f.write("pid,lightgbm,xgboost\n")
        for path in files:
            t = pq.read_table(path)
            fx = matrix(t, names)
            lp = booster.predict(fx)
            xp = model.predict(xgb.DMatrix(fx, feature_names=names))
            for pid, a, b in zip(t.column("pid").to_pylist(), lp, xp):
                f.write(f"{pid},{float(a)!r},{float(b)!r}\n")


if __name__ == "__main__":
    main()
