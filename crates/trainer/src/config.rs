//! trainer-feeder's settings: each a `FLEET_*` variable and a flag, parsed
//! and validated here.

use fleet_contract::{Cli, Common, ConfigError, Var, boolean, number, required};
use fleet_models::{EarlyStopping, GbdtParams, RidgeParams};

pub mod vars {
    use fleet_contract::Var;

    pub const FEATURES: Var = Var {
        name: "FLEET_FEATURES",
        form: "a URI of Parquet files: a prefix ending in '/', one object, or a manifest",
        default: None,
        help: "The features table (feature-parser's output), read whole",
    };
    pub const TARGETS: Var = Var {
        name: "FLEET_TARGETS",
        form: "a URI of Parquet files with pid and actual_age: a prefix ending in '/', one object, or a manifest",
        default: None,
        help: "The targets table, joined to the features on pid",
    };
    pub const SPLIT: Var = Var {
        name: "FLEET_SPLIT",
        form: "TRAIN/VALIDATION/TEST percentages summing to 100, e.g. 80/10/10 (up to two decimals)",
        default: Some("80/10/10"),
        help: "How rows are split, by crc32(pid) mod 10000",
    };
    pub const MODELS: Var = Var {
        name: "FLEET_MODELS",
        form: "a comma-separated list of mean, ridge and gbdt",
        default: Some("mean,ridge,gbdt"),
        help: "Models to train",
    };
    pub const JSONL: Var = Var {
        name: "FLEET_JSONL",
        form: "true or false",
        default: Some("false"),
        help: "Also write each split as JSON lines under jsonl/<split>/",
    };
    pub const SEED: Var = Var {
        name: "FLEET_SEED",
        form: "an integer from 0 to 2^64 - 1",
        default: Some("42"),
        help: "Seeds the GBDT's held-out rows and binning sample",
    };
    pub const RIDGE_ALPHA: Var = Var {
        name: "FLEET_RIDGE_ALPHA",
        form: "a number from 0 to 1e12",
        default: Some("1.0"),
        help: "Ridge: L2 penalty on the standardised coefficients",
    };
    pub const GBDT_LEARNING_RATE: Var = Var {
        name: "FLEET_GBDT_LEARNING_RATE",
        form: "a number greater than 0, at most 10",
        default: Some("0.1"),
        help: "GBDT: shrinkage of each tree",
    };
    pub const GBDT_MAX_ITER: Var = Var {
        name: "FLEET_GBDT_MAX_ITER",
        form: "an integer from 1 to 100000",
        default: Some("100"),
        help: "GBDT: the most boosting iterations (trees)",
    };
    pub const GBDT_MAX_LEAF_NODES: Var = Var {
        name: "FLEET_GBDT_MAX_LEAF_NODES",
        form: "an integer from 2 to 65536",
        default: Some("31"),
        help: "GBDT: the most leaves per tree",
    };
    pub const GBDT_MAX_DEPTH: Var = Var {
        name: "FLEET_GBDT_MAX_DEPTH",
        form: "none, or an integer from 1 to 64",
        default: Some("none"),
        help: "GBDT: the deepest a tree grows",
    };
    pub const GBDT_MIN_SAMPLES_LEAF: Var = Var {
        name: "FLEET_GBDT_MIN_SAMPLES_LEAF",
        form: "an integer from 1 to 10000000",
        default: Some("20"),
        help: "GBDT: the fewest training rows in a leaf",
    };
    pub const GBDT_L2_REGULARIZATION: Var = Var {
        name: "FLEET_GBDT_L2_REGULARIZATION",
        form: "a number from 0 to 1e12",
        default: Some("0"),
        help: "GBDT: L2 penalty on leaf values",
    };
    pub const GBDT_MAX_BINS: Var = Var {
        name: "FLEET_GBDT_MAX_BINS",
        form: "an integer from 2 to 255",
        default: Some("255"),
        help: "GBDT: histogram bins per feature for non-NULL values",
    };
    pub const GBDT_EARLY_STOPPING: Var = Var {
        name: "FLEET_GBDT_EARLY_STOPPING",
        form: "auto (on when train has more than 10,000 rows), true or false",
        default: Some("auto"),
        help: "GBDT: stop when the held-out loss stops improving",
    };
    pub const GBDT_VALIDATION_FRACTION: Var = Var {
        name: "FLEET_GBDT_VALIDATION_FRACTION",
        form: "a number greater than 0 and less than 1",
        default: Some("0.1"),
        help: "GBDT: share of train held out for early stopping",
    };
    pub const GBDT_N_ITER_NO_CHANGE: Var = Var {
        name: "FLEET_GBDT_N_ITER_NO_CHANGE",
        form: "an integer from 1 to 100000",
        default: Some("10"),
        help: "GBDT: iterations without improvement before stopping",
    };
    pub const GBDT_TOL: Var = Var {
        name: "FLEET_GBDT_TOL",
        form: "a number from 0 to 1e12",
        default: Some("1e-7"),
        help: "GBDT: the least improvement that counts",
    };
}

use vars::*;

/// trainer-feeder's settings besides the common ones.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Training data")]
pub struct Args {
    #[arg(long, env = FEATURES.name, value_name = "URI", help = FEATURES.help, long_help = FEATURES.long_help())]
    pub features: Option<String>,
    #[arg(long, env = TARGETS.name, value_name = "URI", help = TARGETS.help, long_help = TARGETS.long_help())]
    pub targets: Option<String>,
    #[arg(long, env = SPLIT.name, value_name = "T/V/T", help = SPLIT.help, long_help = SPLIT.long_help())]
    pub split: Option<String>,
    #[arg(long, env = JSONL.name, value_name = "BOOL", help = JSONL.help, long_help = JSONL.long_help())]
    pub jsonl: Option<String>,
    #[arg(long, env = MODELS.name, value_name = "LIST", help = MODELS.help, long_help = MODELS.long_help(), help_heading = "Models")]
    pub models: Option<String>,
    #[arg(long, env = SEED.name, value_name = "N", help = SEED.help, long_help = SEED.long_help(), help_heading = "Models")]
    pub seed: Option<String>,
    #[arg(long, env = RIDGE_ALPHA.name, value_name = "ALPHA", help = RIDGE_ALPHA.help, long_help = RIDGE_ALPHA.long_help(), help_heading = "Models")]
    pub ridge_alpha: Option<String>,
    #[arg(long, env = GBDT_LEARNING_RATE.name, value_name = "RATE", help = GBDT_LEARNING_RATE.help, long_help = GBDT_LEARNING_RATE.long_help(), help_heading = "Models")]
    pub gbdt_learning_rate: Option<String>,
    #[arg(long, env = GBDT_MAX_ITER.name, value_name = "N", help = GBDT_MAX_ITER.help, long_help = GBDT_MAX_ITER.long_help(), help_heading = "Models")]
    pub gbdt_max_iter: Option<String>,
    #[arg(long, env = GBDT_MAX_LEAF_NODES.name, value_name = "N", help = GBDT_MAX_LEAF_NODES.help, long_help = GBDT_MAX_LEAF_NODES.long_help(), help_heading = "Models")]
    pub gbdt_max_leaf_nodes: Option<String>,
    #[arg(long, env = GBDT_MAX_DEPTH.name, value_name = "N", help = GBDT_MAX_DEPTH.help, long_help = GBDT_MAX_DEPTH.long_help(), help_heading = "Models")]
    pub gbdt_max_depth: Option<String>,
    #[arg(long, env = GBDT_MIN_SAMPLES_LEAF.name, value_name = "N", help = GBDT_MIN_SAMPLES_LEAF.help, long_help = GBDT_MIN_SAMPLES_LEAF.long_help(), help_heading = "Models")]
    pub gbdt_min_samples_leaf: Option<String>,
    #[arg(long, env = GBDT_L2_REGULARIZATION.name, value_name = "L2", help = GBDT_L2_REGULARIZATION.help, long_help = GBDT_L2_REGULARIZATION.long_help(), help_heading = "Models")]
    pub gbdt_l2_regularization: Option<String>,
    #[arg(long, env = GBDT_MAX_BINS.name, value_name = "N", help = GBDT_MAX_BINS.help, long_help = GBDT_MAX_BINS.long_help(), help_heading = "Models")]
    pub gbdt_max_bins: Option<String>,
    #[arg(long, env = GBDT_EARLY_STOPPING.name, value_name = "MODE", help = GBDT_EARLY_STOPPING.help, long_help = GBDT_EARLY_STOPPING.long_help(), help_heading = "Models")]
    pub gbdt_early_stopping: Option<String>,
    #[arg(long, env = GBDT_VALIDATION_FRACTION.name, value_name = "SHARE", help = GBDT_VALIDATION_FRACTION.help, long_help = GBDT_VALIDATION_FRACTION.long_help(), help_heading = "Models")]
    pub gbdt_validation_fraction: Option<String>,
    #[arg(long, env = GBDT_N_ITER_NO_CHANGE.name, value_name = "N", help = GBDT_N_ITER_NO_CHANGE.help, long_help = GBDT_N_ITER_NO_CHANGE.long_help(), help_heading = "Models")]
    pub gbdt_n_iter_no_change: Option<String>,
    #[arg(long, env = GBDT_TOL.name, value_name = "TOL", help = GBDT_TOL.help, long_help = GBDT_TOL.long_help(), help_heading = "Models")]
    pub gbdt_tol: Option<String>,
}

/// A built-in model trainer-feeder trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Mean,
    Ridge,
    Gbdt,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mean => "mean",
            ModelKind::Ridge => "ridge",
            ModelKind::Gbdt => "gbdt",
        }
    }
}

/// The train/validation/test split in basis points of 10,000 buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub train: u32,
    pub validation: u32,
    pub test: u32,
}

impl Split {
    pub const BUCKETS: u32 = 10_000;

    /// Which split (0 train, 1 validation, 2 test) a pid falls in:
    /// IEEE CRC-32 of its UTF-8 bytes mod 10,000, which Athena computes as
    /// `crc32(to_utf8(pid)) % 10000`.
    #[inline]
    pub fn of(&self, pid: &[u8]) -> usize {
        let b = crc32fast::hash(pid) % Self::BUCKETS;
        if b < self.train {
            0
        } else if b < self.train + self.validation {
            1
        } else {
            2
        }
    }

    pub fn parse(s: &str) -> Result<Split, ConfigError> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bp = |p: &str| -> Option<u32> {
            let v: f64 = p.trim().parse().ok()?;
            let b = (v * 100.0).round();
            ((0.0..=10_000.0).contains(&v) && (b - v * 100.0).abs() < 1e-6).then_some(b as u32)
        };
        match parts.as_slice() {
            [a, b, c] => match (bp(a), bp(b), bp(c)) {
                (Some(t), Some(v), Some(e)) if t > 0 && t + v + e == Self::BUCKETS => {
                    Ok(Split { train: t, validation: v, test: e })
                }
                _ => Err(SPLIT.invalid(s)),
            },
            _ => Err(SPLIT.invalid(s)),
        }
    }
}

/// trainer-feeder's validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub common: Common,
    pub features: String,
    pub targets: String,
    pub split: Split,
    pub jsonl: bool,
    pub models: Vec<ModelKind>,
    pub ridge: RidgeParams,
    pub gbdt: GbdtParams,
}

impl AsRef<Common> for Config {
    fn as_ref(&self) -> &Common {
        &self.common
    }
}

impl Config {
    /// The settings from `FLEET_*` pairs alone (the process environment is
    /// not read).
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        fleet_worker::configure_from_vars::<crate::TrainerFeeder, K, V>(vars)
    }

    pub(crate) fn validate(cli: Cli<Args>) -> Result<Config, ConfigError> {
        let a = &cli.own;
        let features = required(&a.features, &FEATURES)?.trim().to_string();
        let targets = required(&a.targets, &TARGETS)?.trim().to_string();
        let common = cli.common.validate()?;
        if common.shard.count != 1 {
            return Err(ConfigError::Invalid {
                var: "FLEET_SHARD_COUNT",
                value: common.shard.count.to_string(),
                form: "1: trainer-feeder reads the whole table in one task",
            });
        }
        let split = a.split.as_deref().map_or(Ok(Split { train: 8000, validation: 1000, test: 1000 }), Split::parse)?;
        let jsonl = boolean(&a.jsonl, &JSONL, false)?;
        let models = parse_models(a.models.as_deref().unwrap_or("mean,ridge,gbdt"))?;
        let seed = number(&a.seed, &SEED, 42u64, 0, u64::MAX)?;
        let ridge = RidgeParams { alpha: number(&a.ridge_alpha, &RIDGE_ALPHA, 1.0, 0.0, 1e12)? };
        let d = GbdtParams::default();
        let learning_rate = number(&a.gbdt_learning_rate, &GBDT_LEARNING_RATE, d.learning_rate, 0.0, 10.0)?;
        if learning_rate <= 0.0 {
            return Err(GBDT_LEARNING_RATE.invalid(a.gbdt_learning_rate.as_deref().unwrap_or_default()));
        }
        let max_depth = match a.gbdt_max_depth.as_deref().map(str::trim) {
            None | Some("") | Some("none") => None,
            Some(_) => Some(number(&a.gbdt_max_depth, &GBDT_MAX_DEPTH, 0usize, 1, 64)?),
        };
        let early_stopping = match a.gbdt_early_stopping.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => EarlyStopping::Auto,
            Some("true" | "1") => EarlyStopping::On,
            Some("false" | "0") => EarlyStopping::Off,
            Some(s) => return Err(GBDT_EARLY_STOPPING.invalid(s)),
        };
        let validation_fraction =
            number(&a.gbdt_validation_fraction, &GBDT_VALIDATION_FRACTION, d.validation_fraction, 0.0, 1.0)?;
        if validation_fraction <= 0.0 || validation_fraction >= 1.0 {
            return Err(GBDT_VALIDATION_FRACTION.invalid(a.gbdt_validation_fraction.as_deref().unwrap_or_default()));
        }
        let gbdt = GbdtParams {
            learning_rate,
            max_iter: number(&a.gbdt_max_iter, &GBDT_MAX_ITER, d.max_iter, 1, 100_000)?,
            max_leaf_nodes: number(&a.gbdt_max_leaf_nodes, &GBDT_MAX_LEAF_NODES, d.max_leaf_nodes, 2, 65_536)?,
            max_depth,
            min_samples_leaf: number(
                &a.gbdt_min_samples_leaf,
                &GBDT_MIN_SAMPLES_LEAF,
                d.min_samples_leaf,
                1,
                10_000_000,
            )?,
            l2_regularization: number(&a.gbdt_l2_regularization, &GBDT_L2_REGULARIZATION, 0.0, 0.0, 1e12)?,
            max_bins: number(&a.gbdt_max_bins, &GBDT_MAX_BINS, d.max_bins, 2, 255)?,
            early_stopping,
            validation_fraction,
            n_iter_no_change: number(&a.gbdt_n_iter_no_change, &GBDT_N_ITER_NO_CHANGE, d.n_iter_no_change, 1, 100_000)?,
            tol: number(&a.gbdt_tol, &GBDT_TOL, d.tol, 0.0, 1e12)?,
            seed,
        };
        Ok(Config { common, features, targets, split, jsonl, models, ridge, gbdt })
    }
}

fn parse_models(s: &str) -> Result<Vec<ModelKind>, ConfigError> {
    let mut out = Vec::new();
    for m in s.split(',').map(str::trim) {
        let k = match m {
            "mean" => ModelKind::Mean,
            "ridge" => ModelKind::Ridge,
            "gbdt" => ModelKind::Gbdt,
            _ => return Err(MODELS.invalid(s)),
        };
        if out.contains(&k) {
            return Err(MODELS.invalid(s));
        }
        out.push(k);
    }
    Ok(out)
}

/// Every variable trainer-feeder adds to the contract.
pub const VARS: &[Var] = &[
    FEATURES,
    TARGETS,
    SPLIT,
    MODELS,
    JSONL,
    SEED,
    RIDGE_ALPHA,
    GBDT_LEARNING_RATE,
    GBDT_MAX_ITER,
    GBDT_MAX_LEAF_NODES,
    GBDT_MAX_DEPTH,
    GBDT_MIN_SAMPLES_LEAF,
    GBDT_L2_REGULARIZATION,
    GBDT_MAX_BINS,
    GBDT_EARLY_STOPPING,
    GBDT_VALIDATION_FRACTION,
    GBDT_N_ITER_NO_CHANGE,
    GBDT_TOL,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut v = vec![("FLEET_FEATURES", "f/"), ("FLEET_TARGETS", "t/"), ("FLEET_OUTPUT", "o/")];
        v.extend_from_slice(extra);
        Config::from_vars(v)
    }

    #[test]
    fn defaults_are_documented_ones() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.split, Split { train: 8000, validation: 1000, test: 1000 });
        assert_eq!(c.models, vec![ModelKind::Mean, ModelKind::Ridge, ModelKind::Gbdt]);
        assert_eq!(c.gbdt, GbdtParams::default());
        assert_eq!(c.ridge.alpha, 1.0);
        assert!(!c.jsonl);
    }

    #[test]
    fn settings_parse_and_bad_ones_name_the_variable() {
        let c = cfg(&[
            ("FLEET_SPLIT", "70/15.5/14.5"),
            ("FLEET_MODELS", "gbdt, mean"),
            ("FLEET_GBDT_MAX_DEPTH", "6"),
            ("FLEET_GBDT_EARLY_STOPPING", "false"),
            ("FLEET_SEED", "7"),
        ])
        .unwrap();
        assert_eq!(c.split, Split { train: 7000, validation: 1550, test: 1450 });
        assert_eq!(c.models, vec![ModelKind::Gbdt, ModelKind::Mean]);
        assert_eq!(c.gbdt.max_depth, Some(6));
        assert_eq!(c.gbdt.early_stopping, EarlyStopping::Off);
        assert_eq!(c.gbdt.seed, 7);
        let e = |v: &[(&str, &str)]| cfg(v).unwrap_err().to_string();
        assert_eq!(
            e(&[("FLEET_SPLIT", "80/10/5")]),
            "FLEET_SPLIT=\"80/10/5\" is invalid: expected TRAIN/VALIDATION/TEST percentages summing to 100, e.g. 80/10/10 (up to two decimals)"
        );
        assert!(e(&[("FLEET_MODELS", "mean,xgb")]).starts_with("FLEET_MODELS=\"mean,xgb\" is invalid"));
        assert!(e(&[("FLEET_GBDT_LEARNING_RATE", "0")]).starts_with("FLEET_GBDT_LEARNING_RATE=\"0\" is invalid"));
        assert!(e(&[("FLEET_SHARD_COUNT", "4")]).starts_with("FLEET_SHARD_COUNT=\"4\" is invalid: expected 1"));
        let missing = Config::from_vars([("FLEET_OUTPUT", "o/")]).unwrap_err().to_string();
        assert!(missing.starts_with("FLEET_FEATURES is required"), "{missing}");
    }

    #[test]
    fn the_split_is_crc32_of_the_pid_mod_10000() {
        let s = Split { train: 8000, validation: 1000, test: 1000 };
        // crc32("a") = 0xe8b7be43 = 3904355907; mod 10000 = 5907: train
        assert_eq!(crc32fast::hash(b"a") % 10_000, 5907);
        assert_eq!(s.of(b"a"), 0);
        let counts = (0..100_000).fold([0usize; 3], |mut c, i| {
            c[s.of(format!("p{i}").as_bytes())] += 1;
            c
        });
        assert!(counts[0].abs_diff(80_000) < 800 && counts[1].abs_diff(10_000) < 400, "{counts:?}");
    }
}
