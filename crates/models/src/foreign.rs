//! Gradient-boosted models trained elsewhere, read for prediction:
//! LightGBM's text model (`Booster.save_model`) and XGBoost's JSON model
//! (`Booster.save_model("model.json")`), regression objectives with an
//! identity link. Features are mapped by the names saved in the model.

use serde_json::Value;

use crate::tree::{Ensemble, LightGbmMissing, Rule, Tree};
use crate::{Model, ModelError, Params};

/// LightGBM objectives whose raw score is the prediction.
const LIGHTGBM_IDENTITY: &[&str] =
    &["regression", "regression_l2", "regression_l1", "huber", "fair", "quantile", "mape"];
/// XGBoost objectives whose margin is the prediction.
const XGBOOST_IDENTITY: &[&str] =
    &["reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:quantileerror", "reg:linear"];

fn get<'a>(kv: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Reads a LightGBM text model.
pub(crate) fn lightgbm(what: &str, text: &str) -> Result<Model, ModelError> {
    let bad = |m: String| ModelError::invalid(what, m);
    let mut header: Vec<(&str, &str)> = vec![];
    let mut trees: Vec<Vec<(&str, &str)>> = vec![];
    let mut lines = text.lines().map(str::trim_end);
    for line in lines.by_ref() {
        if line == "end of trees" {
            break;
        }
        if line.starts_with("Tree=") {
            trees.push(vec![]);
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match trees.last_mut() {
                Some(t) => t.push((k, v)),
                None => header.push((k, v)),
            }
        }
    }
    let objective = get(&header, "objective").unwrap_or("");
    let name = objective.split_whitespace().next().unwrap_or("");
    if !LIGHTGBM_IDENTITY.contains(&name) {
        return Err(bad(format!(
            "LightGBM objective {objective:?}; expected a regression objective with an identity link ({})",
            LIGHTGBM_IDENTITY.join(", ")
        )));
    }
    if header.iter().any(|(k, _)| *k == "average_output") || text.lines().any(|l| l.trim() == "average_output") {
        return Err(bad("LightGBM random forest (average_output) models are not supported".into()));
    }
    if get(&header, "num_class").is_some_and(|v| v != "1") {
        return Err(bad("LightGBM model with more than one class; expected a regression model".into()));
    }
    let features: Vec<String> = get(&header, "feature_names")
        .ok_or_else(|| bad("LightGBM model without feature_names".into()))?
        .split_whitespace()
        .map(String::from)
        .collect();
    if trees.is_empty() {
        return Err(bad("LightGBM model without trees (no \"Tree=\" section before \"end of trees\")".into()));
    }
    let mut out = Vec::with_capacity(trees.len());
    for (i, kv) in trees.iter().enumerate() {
        let at = |key: &str| format!("tree {i}: {key}");
        let nums = |key: &str| -> Result<Vec<f64>, ModelError> {
            get(kv, key)
                .unwrap_or("")
                .split_whitespace()
                .map(|v| v.parse::<f64>().map_err(|_| bad(format!("{}: {v:?} is not a number", at(key)))))
                .collect()
        };
        let ints = |key: &str| -> Result<Vec<i64>, ModelError> {
            get(kv, key)
                .unwrap_or("")
                .split_whitespace()
                .map(|v| v.parse::<i64>().map_err(|_| bad(format!("{}: {v:?} is not an integer", at(key)))))
                .collect()
        };
        if get(kv, "is_linear").is_some_and(|v| v != "0") {
            return Err(bad(format!("{}: linear trees are not supported", at("is_linear"))));
        }
        let leaves = nums("leaf_value")?;
        let n_leaves: usize = get(kv, "num_leaves").and_then(|v| v.parse().ok()).unwrap_or(leaves.len());
        if leaves.len() != n_leaves || n_leaves == 0 {
            return Err(bad(format!("{}: {} values for {n_leaves} leaves", at("leaf_value"), leaves.len())));
        }
        if n_leaves == 1 {
            out.push(Tree::leaf(leaves[0]));
            continue;
        }
        let internal = n_leaves - 1;
        let (feature, threshold, decision) = (ints("split_feature")?, nums("threshold")?, ints("decision_type")?);
        let (left, right) = (ints("left_child")?, ints("right_child")?);
        for (key, len) in [
            ("split_feature", feature.len()),
            ("threshold", threshold.len()),
            ("decision_type", decision.len()),
            ("left_child", left.len()),
            ("right_child", right.len()),
        ] {
            if len != internal {
                return Err(bad(format!("{}: {len} entries for {internal} split nodes", at(key))));
            }
        }
        // internal nodes first, then leaf j at internal + j
        let child = |c: i64| if c >= 0 { c as i32 } else { (internal as i64 + !c) as i32 };
        let mut t = Tree::default();
        for j in 0..internal {
            let d = decision[j];
            if d & 1 != 0 {
                return Err(bad(format!("{}: categorical splits are not supported", at("decision_type"))));
            }
            t.feature.push(u32::try_from(feature[j]).map_err(|_| bad(format!("{}: negative", at("split_feature"))))?);
            t.threshold.push(threshold[j]);
            t.missing_left.push(d & 2 != 0);
            t.missing_type.push(match (d >> 2) & 3 {
                0 => LightGbmMissing::None,
                1 => LightGbmMissing::Zero,
                _ => LightGbmMissing::NaN,
            });
            t.left.push(child(left[j]));
            t.right.push(child(right[j]));
            t.value.push(0.0);
        }
        for v in leaves {
            t.feature.push(0);
            t.threshold.push(0.0);
            t.missing_left.push(false);
            t.missing_type.push(LightGbmMissing::None);
            t.left.push(-1);
            t.right.push(-1);
            t.value.push(v);
        }
        out.push(t);
    }
    let m = Model::new(
        "lightgbm",
        "actual_age",
        features,
        Params::Gbdt(Ensemble { rule: Rule::LightGbm, base_score: 0.0, trees: out }),
    );
    m.validate(what)?;
    Ok(m)
}

/// Reads an XGBoost JSON model.
pub(crate) fn xgboost(what: &str, v: &Value) -> Result<Model, ModelError> {
    let bad = |m: String| ModelError::invalid(what, m);
    let learner = &v["learner"];
    let objective = learner["objective"]["name"].as_str().unwrap_or("");
    if !XGBOOST_IDENTITY.contains(&objective) {
        return Err(bad(format!(
            "XGBoost objective {objective:?}; expected a regression objective with an identity link ({})",
            XGBOOST_IDENTITY.join(", ")
        )));
    }
    let param = &learner["learner_model_param"];
    let num = |v: &Value| -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            // "5E-1", or "[3.8E1]" (XGBoost 3: one per target)
            Value::String(s) => s.trim_matches(|c| c == '[' || c == ']').split(',').next()?.trim().parse().ok(),
            _ => None,
        }
    };
    if num(&param["num_target"]).is_some_and(|n| n > 1.0) || num(&param["num_class"]).is_some_and(|n| n > 1.0) {
        return Err(bad("XGBoost model with several targets or classes; expected one regression target".into()));
    }
    let base_score =
        num(&param["base_score"]).ok_or_else(|| bad("XGBoost learner_model_param.base_score is missing".into()))?;
    let booster = &learner["gradient_booster"];
    if booster["name"].as_str() != Some("gbtree") {
        return Err(bad(format!("XGBoost booster {}; expected \"gbtree\"", booster["name"])));
    }
    let features: Vec<String> = learner["feature_names"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            bad("XGBoost model without feature_names; train it on a DataFrame (or set DMatrix feature_names)".into())
        })?
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect();
    let trees = booster["model"]["trees"].as_array().ok_or_else(|| bad("XGBoost model without trees".into()))?;
    let mut out = Vec::with_capacity(trees.len());
    for (i, t) in trees.iter().enumerate() {
        let arr = |key: &str| -> Result<&Vec<Value>, ModelError> {
            t[key].as_array().ok_or_else(|| bad(format!("tree {i}: {key} is missing")))
        };
        let ints = |key: &str| -> Result<Vec<i64>, ModelError> {
            arr(key)?
                .iter()
                .map(|v| v.as_i64().or_else(|| v.as_bool().map(i64::from)))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("tree {i}: {key} holds a value that is not an integer")))
        };
        let (left, right, index) = (ints("left_children")?, ints("right_children")?, ints("split_indices")?);
        let default_left = ints("default_left")?;
        let cond: Vec<f64> = arr("split_conditions")?
            .iter()
            .map(|v| v.as_f64())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(format!("tree {i}: split_conditions holds a value that is not a number")))?;
        if let Ok(types) = ints("split_type")
            && types.iter().any(|t| *t != 0)
        {
            return Err(bad(format!("tree {i}: categorical splits are not supported")));
        }
        let n = left.len();
        if [right.len(), index.len(), default_left.len(), cond.len()].iter().any(|l| *l != n) {
            return Err(bad(format!("tree {i}: its node arrays differ in length")));
        }
        let mut tree = Tree::default();
        for j in 0..n {
            let leaf = left[j] < 0;
            tree.feature.push(if leaf { 0 } else { index[j] as u32 });
            tree.threshold.push(if leaf { 0.0 } else { cond[j] });
            tree.missing_left.push(default_left[j] != 0);
            tree.left.push(if leaf { -1 } else { left[j] as i32 });
            tree.right.push(if leaf { -1 } else { right[j] as i32 });
            tree.value.push(if leaf { cond[j] } else { 0.0 });
        }
        out.push(tree);
    }
    let m = Model::new(
        "xgboost",
        "actual_age",
        features,
        Params::Gbdt(Ensemble { rule: Rule::XgBoost, base_score, trees: out }),
    );
    m.validate(what)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use crate::{Matrix, Model};

    const LIGHTGBM: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\nobjective=regression\nfeature_names=a b\nfeature_infos=[0:10] [0:5]\ntree_sizes=1 1\n\nTree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=4.5 1.0000000000000002\ndecision_type=10 0\nleft_child=-1 -2\nright_child=1 -3\nleaf_value=30 40 50\nleaf_weight=1 1 1\nleaf_count=1 1 1\ninternal_value=0 0\ninternal_weight=0 0\ninternal_count=3 2\nis_linear=0\nshrinkage=1\n\n\nTree=1\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\nleft_child=\nright_child=\nleaf_value=0.5\nleaf_weight=\nleaf_count=\ninternal_value=\ninternal_weight=\ninternal_count=\nis_linear=0\nshrinkage=1\n\n\nend of trees\n\nfeature_importances:\na=1\nb=1\n\nparameters:\n[boosting: gbdt]\nend of parameters\n\npandas_categorical:null\n";

    #[test]
    fn lightgbm_text_model() {
        let m = Model::from_bytes("m.txt", LIGHTGBM.as_bytes()).unwrap();
        assert_eq!(m.name, "lightgbm");
        assert_eq!(m.features, ["a", "b"]);
        // node 0: a <= 4.5 left (leaf 0), NaN default left (decision 10 = default_left | NaN type)
        // node 1: b <= 1 left (leaf 1), missing type None: NaN is 0
        let x = Matrix::new(
            vec!["a".into(), "b".into()],
            vec![vec![1.0, 7.0, 7.0, f64::NAN, 7.0], vec![9.0, 0.5, 3.0, 9.0, f64::NAN]],
        )
        .unwrap();
        assert_eq!(m.predict(&x), [30.5, 40.5, 50.5, 30.5, 40.5]);
        let bad = LIGHTGBM.replace("objective=regression", "objective=binary sigmoid:1");
        let err = Model::from_bytes("m.txt", bad.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("m.txt: LightGBM objective \"binary sigmoid:1\"; expected a regression objective"),
            "{err}"
        );
        let bad = LIGHTGBM.replace("left_child=-1 -2", "left_child=-1");
        let err = Model::from_bytes("m.txt", bad.as_bytes()).unwrap_err().to_string();
        assert_eq!(err, "m.txt: tree 0: left_child: 1 entries for 2 split nodes");
    }

    #[test]
    fn xgboost_json_model() {
        let doc = r#"{"learner":{"feature_names":["a","b"],"feature_types":["float","float"],
          "gradient_booster":{"model":{"trees":[{"left_children":[1,-1,-1],"right_children":[2,-1,-1],
            "split_indices":[1,0,0],"split_conditions":[2.0,-1.5,2.5],"default_left":[1,0,0],"split_type":[0,0,0],
            "base_weights":[0,0,0]}]},"name":"gbtree"},
          "learner_model_param":{"base_score":"[4E1]","num_class":"0","num_feature":"2","num_target":"1"},
          "objective":{"name":"reg:squarederror"}},"version":[3,0,0]}"#;
        let m = Model::from_bytes("x.json", doc.as_bytes()).unwrap();
        assert_eq!(m.name, "xgboost");
        let x = Matrix::new(vec!["a".into(), "b".into()], vec![vec![0.0; 3], vec![1.0, 2.0, f64::NAN]]).unwrap();
        // b < 2 left: 40 - 1.5; b = 2 right: 42.5; NaN default left
        assert_eq!(m.predict(&x), [38.5, 42.5, 38.5]);
        let err = Model::from_bytes("x.json", doc.replace("reg:squarederror", "binary:logistic").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.json: XGBoost objective \"binary:logistic\""), "{err}");
        let err = Model::from_bytes("x.json", br#"{"format":"other"}"#).unwrap_err().to_string();
        assert!(err.contains("expected \"fleet-model\" or an XGBoost JSON model"), "{err}");
    }
}
