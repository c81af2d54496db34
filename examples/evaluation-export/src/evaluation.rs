//! The scoring: one evaluation of a binary classifier's predictions against
//! a labelled data set — accuracy, precision, recall, F1 and the confusion
//! matrix.
//!
//! Pure functions, no clock and no I/O: evaluation `n` of seed `s` scores
//! the same variant of the predictions every time it runs, so an evaluation
//! repeated after a crash gives the same numbers (and is exported under the
//! same id). Each variant perturbs the classifier's probabilities with
//! seeded noise before thresholding, as if scoring `n` retrained models.

use serde::Serialize;

/// The data set shipped with the example: 400 customers, whether each one
/// churned, and the probability of churn a classifier gave.
const BUNDLED: &str = include_str!("../data/churn_predictions.csv");
const BUNDLED_NAME: &str = "churn_predictions";

/// A probability at or above this is a positive prediction.
const THRESHOLD: f64 = 0.5;
/// Each variant moves every probability by at most this much.
const NOISE: f64 = 0.15;

/// A data set that cannot be read: the line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error("the data set is empty: it needs a header line and at least one row")]
    Empty,
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// One labelled row: the truth and the classifier's probability of the
/// positive class.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    label: bool,
    probability: f64,
}

/// Labelled predictions: a CSV with a header and three columns — an id
/// (ignored), the label (`0` or `1`) and the predicted probability of `1`
/// (`0` to `1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    name: String,
    rows: Vec<Row>,
}

impl Dataset {
    /// The data set shipped with the example
    /// (`data/churn_predictions.csv`).
    pub fn bundled() -> Result<Dataset, DatasetError> {
        Self::parse(BUNDLED_NAME, BUNDLED)
    }

    /// Reads the CSV `text`; `name` is what results and exports call it.
    pub fn parse(name: impl Into<String>, text: &str) -> Result<Dataset, DatasetError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        lines.next().ok_or(DatasetError::Empty)?; // the header
        let rows = lines
            .filter(|(_, line)| !line.is_empty())
            .map(|(line, text)| {
                parse_row(text).map_err(|message| DatasetError::Line { line, message })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Err(DatasetError::Empty);
        }
        Ok(Dataset {
            name: name.into(),
            rows,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many labelled rows it has.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Always false: a data set has at least one row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn parse_row(text: &str) -> Result<Row, String> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let [_id, label, probability] = fields[..] else {
        return Err(format!(
            "expected 3 columns (id, label, probability), found {}",
            fields.len()
        ));
    };
    let label = match label {
        "0" => false,
        "1" => true,
        other => return Err(format!("the label must be 0 or 1, not {other:?}")),
    };
    let probability = probability
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| {
            format!("the probability must be a number from 0 to 1, not {probability:?}")
        })?;
    Ok(Row { label, probability })
}

/// Predictions against the truth, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ConfusionMatrix {
    pub true_positives: u32,
    pub false_positives: u32,
    pub true_negatives: u32,
    pub false_negatives: u32,
}

impl ConfusionMatrix {
    pub fn total(&self) -> u32 {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }
}

/// What one evaluation measured. A ratio whose denominator is zero (no
/// positive prediction, no positive label) is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub confusion_matrix: ConfusionMatrix,
}

impl Metrics {
    /// The ratios of a confusion matrix.
    pub fn from_confusion(m: ConfusionMatrix) -> Metrics {
        let ratio = |num: u32, den: u32| {
            if den == 0 {
                0.0
            } else {
                f64::from(num) / f64::from(den)
            }
        };
        let precision = ratio(m.true_positives, m.true_positives + m.false_positives);
        let recall = ratio(m.true_positives, m.true_positives + m.false_negatives);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Metrics {
            accuracy: ratio(m.true_positives + m.true_negatives, m.total()),
            precision,
            recall,
            f1,
            confusion_matrix: m,
        }
    }
}

/// Scores variant `n` of seed `seed`: every probability moved by seeded
/// noise in ±`NOISE`, then thresholded at `THRESHOLD`.
pub fn evaluate(dataset: &Dataset, seed: u32, n: u32) -> Metrics {
    let mut noise = SplitMix64::new((u64::from(seed) << 32) | u64::from(n));
    let mut m = ConfusionMatrix::default();
    for row in &dataset.rows {
        let predicted = row.probability + noise.symmetric(NOISE) >= THRESHOLD;
        match (predicted, row.label) {
            (true, true) => m.true_positives += 1,
            (true, false) => m.false_positives += 1,
            (false, false) => m.true_negatives += 1,
            (false, true) => m.false_negatives += 1,
        }
    }
    Metrics::from_confusion(m)
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator whose output for a
/// seed never changes with a dependency's version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-half_width, half_width)`.
    fn symmetric(&mut self, half_width: f64) -> f64 {
        // The top 53 bits as a fraction in [0, 1): exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (unit * 2.0 - 1.0) * half_width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset::parse(
            "tiny",
            "id,label,p\na,1,0.9\nb,1,0.2\nc,0,0.8\nd,0,0.1\ne,0,0.05\n",
        )
        .unwrap()
    }

    #[test]
    fn the_bundled_data_set_reads_and_its_variants_score_near_the_classifier() {
        let data = Dataset::bundled().unwrap();
        assert_eq!((data.name(), data.len()), ("churn_predictions", 400));
        for n in 0..50 {
            let m = evaluate(&data, 0, n);
            assert_eq!(m.confusion_matrix.total(), 400);
            assert!((0.8..0.95).contains(&m.accuracy), "{n}: {m:?}");
        }
    }

    #[test]
    fn ratios_follow_the_confusion_matrix() {
        let m = Metrics::from_confusion(ConfusionMatrix {
            true_positives: 6,
            false_positives: 2,
            true_negatives: 10,
            false_negatives: 4,
        });
        assert!((m.accuracy - 16.0 / 22.0).abs() < 1e-12);
        assert!((m.precision - 0.75).abs() < 1e-12);
        assert!((m.recall - 0.6).abs() < 1e-12);
        assert!((m.f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
    }

    #[test]
    fn nothing_predicted_positive_scores_zero_not_nan() {
        let m = Metrics::from_confusion(ConfusionMatrix {
            true_negatives: 3,
            false_negatives: 1,
            ..ConfusionMatrix::default()
        });
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
        assert!((m.accuracy - 0.75).abs() < 1e-12);
    }

    #[test]
    fn a_variant_is_the_same_every_time_and_variants_differ() {
        let data = Dataset::bundled().unwrap();
        assert_eq!(evaluate(&data, 7, 3), evaluate(&data, 7, 3));
        let distinct: std::collections::HashSet<_> = (0..20)
            .map(|n| evaluate(&data, 7, n).confusion_matrix.true_positives)
            .collect();
        assert!(distinct.len() > 1, "every variant scored the same");
        // Noise within ±0.15 cannot flip 0.9 or 0.05, so the tiny set's
        // clear rows always count the same way.
        let m = evaluate(&tiny(), 1, 1).confusion_matrix;
        assert_eq!(m.total(), 5);
        assert!(m.true_positives >= 1 && m.true_negatives >= 1);
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let bad = Dataset::parse("x", "id,label,p\na,1,0.5\nb,2,0.5\n").unwrap_err();
        assert_eq!(
            bad,
            DatasetError::Line {
                line: 3,
                message: "the label must be 0 or 1, not \"2\"".into()
            }
        );
        let out_of_range = Dataset::parse("x", "id,label,p\na,1,1.5\n").unwrap_err();
        assert!(
            out_of_range
                .to_string()
                .starts_with("line 2: the probability")
        );
        assert_eq!(
            Dataset::parse("x", "id,label,p\n"),
            Err(DatasetError::Empty)
        );
        assert_eq!(Dataset::parse("x", ""), Err(DatasetError::Empty));
    }
}
