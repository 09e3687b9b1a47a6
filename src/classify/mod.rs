//! Fourth stage: scores a feature vector against each label with a linear
//! model learned by linfa, and explains the decision.
//!
//! linfa fits on dense matrices; prediction does not go through linfa at all.
//! The learned weights are taken out once and scored against the sparse
//! vector directly, so one prediction costs O(non-zero features × labels).

mod metrics;
mod train;

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use metrics::{BinaryMetrics, EvalReport, LabelMetrics};
pub use train::{Learner, TrainParams, TrainReport, ValidTrainParams};

use crate::error::{Error, Result};
use crate::features::{Featurizer, SparseVec};
use crate::model::ModelMeta;
use crate::normalize::Normalizer;

/// A linear multi-class scorer: `softmax((x·W + b) / T)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinearHead {
    pub labels: Vec<String>,
    /// Row-major `dim × labels`.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    /// Calibration temperature fitted on cross-validation predictions.
    pub temperature: f32,
}

impl LinearHead {
    fn n_labels(&self) -> usize {
        self.labels.len()
    }

    pub fn logits(&self, x: &SparseVec) -> Vec<f32> {
        let l = self.n_labels();
        let mut z = self.bias.clone();
        for &(j, v) in x {
            let row = &self.weights[j as usize * l..(j as usize + 1) * l];
            for (zk, wk) in z.iter_mut().zip(row) {
                *zk += v * wk;
            }
        }
        z
    }

    pub fn probabilities(&self, x: &SparseVec) -> Vec<f32> {
        softmax(&self.logits(x), self.temperature)
    }
}

pub(crate) fn softmax(z: &[f32], temperature: f32) -> Vec<f32> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f32> = z.iter().map(|v| ((v - max) / t).exp()).collect();
    let sum: f32 = p.iter().sum();
    for v in &mut p {
        *v /= sum;
    }
    p
}

/// A binary logistic scorer for the urgent flag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UrgencyHead {
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Probability at or above which a message is flagged, chosen on
    /// cross-validation to reach the target recall.
    pub threshold: f32,
}

impl UrgencyHead {
    pub fn probability(&self, x: &SparseVec) -> f32 {
        let z = self.bias
            + x.iter()
                .map(|&(j, v)| v * self.weights[j as usize])
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// One label and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    /// The label.
    pub label: String,
    /// Its calibrated probability.
    pub score: f32,
}

/// A feature that pushed the prediction, with its contribution to the
/// winning label's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Readable feature: `w:word`, `b:two words`, `c: ngr`, `s:piece`.
    pub feature: String,
    /// Contribution (value × weight) to the winning label's logit.
    pub weight: f32,
}

/// What the classifier says about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub confidence: f32,
    /// Every label with its probability, most probable first.
    pub scores: Vec<LabelScore>,
    /// Probability that the message is an emergency in progress (when the
    /// model has an urgency head).
    pub urgent_score: Option<f32>,
    /// Whether `urgent_score` reaches the model's threshold.
    pub urgent: bool,
    /// The features that pushed the winning label most.
    pub explanation: Vec<Contribution>,
    /// True when the message had no known feature at all (empty, emoji
    /// never seen, another script): the label is then only the prior.
    pub no_signal: bool,
}

impl Prediction {
    /// The `n` most probable labels.
    pub fn top(&self, n: usize) -> &[LabelScore] {
        &self.scores[..n.min(self.scores.len())]
    }
}

/// A trained message classifier: normalizer, features and weights, loaded
/// once and shared. `Send + Sync`; `classify` takes `&self`.
///
/// ```no_run
/// use mujib::Classifier;
/// let clf = Classifier::load("models/mujib.model")?;
/// let p = clf.classify("3ndi mo5alfa radar 600 dirham, kaif a3tared?");
/// println!("{} {:.2}", p.label, p.confidence);
/// # Ok::<(), mujib::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Classifier {
    pub(crate) normalizer: Normalizer,
    pub(crate) featurizer: Featurizer,
    pub(crate) head: LinearHead,
    pub(crate) urgency: Option<UrgencyHead>,
    pub(crate) meta: ModelMeta,
}

/// How many features an explanation lists.
const EXPLAIN: usize = 5;

impl Classifier {
    /// Loads a model file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Self::from_reader(std::io::BufReader::new(f)).map_err(|e| match e {
            Error::Stream(source) => Error::io(path, source),
            other => other,
        })
    }

    /// Reads a model from any reader (file, memory, network).
    pub fn from_reader(reader: impl Read) -> Result<Self> {
        crate::model::read(reader)
    }

    /// Writes the model file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = std::io::BufWriter::new(f);
        self.write(&mut w)
            .and_then(|_| w.flush().map_err(Error::Stream))
            .map_err(|e| match e {
                Error::Stream(source) => Error::io(path, source),
                other => other,
            })
    }

    /// Writes the model to any writer.
    pub fn write(&self, writer: impl Write) -> Result<()> {
        crate::model::write(self, writer)
    }

    /// The labels this model predicts, in model order.
    pub fn labels(&self) -> &[String] {
        &self.head.labels
    }

    /// Training metadata stored in the model.
    pub fn metadata(&self) -> &ModelMeta {
        &self.meta
    }

    /// The normalizer the model was trained with.
    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// The featurizer (tokenizer, vocabulary) the model was trained with.
    pub fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }

    /// Whether the model can flag emergencies.
    pub fn has_urgency(&self) -> bool {
        self.urgency.is_some()
    }

    /// Normalizes and featurizes raw text as the model was trained.
    pub fn features(&self, text: &str) -> SparseVec {
        self.featurizer.featurize(&self.normalizer.normalize(text))
    }

    /// Classifies one raw message. Never panics; empty or unknown text gets
    /// the prior label with `no_signal` set.
    pub fn classify(&self, text: &str) -> Prediction {
        let x = self.features(text);
        self.predict_features(&x)
    }

    /// [`classify`](Self::classify) for text already normalized with this
    /// model's [`normalizer`](Self::normalizer), for callers that need the
    /// normalized text anyway.
    pub fn classify_normalized(&self, normalized: &str) -> Prediction {
        self.predict_features(&self.featurizer.featurize(normalized))
    }

    pub(crate) fn predict_features(&self, x: &SparseVec) -> Prediction {
        let probs = self.head.probabilities(x);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let best = order[0];
        let scores = order
            .iter()
            .map(|&k| LabelScore {
                label: self.head.labels[k].clone(),
                score: probs[k],
            })
            .collect();
        let urgent_score = self.urgency.as_ref().map(|u| u.probability(x));
        let urgent = match (&self.urgency, urgent_score) {
            (Some(u), Some(s)) => s >= u.threshold,
            _ => false,
        };
        Prediction {
            label: self.head.labels[best].clone(),
            confidence: probs[best],
            scores,
            urgent_score,
            urgent,
            explanation: self.explain(x, best),
            no_signal: x.is_empty(),
        }
    }

    fn explain(&self, x: &SparseVec, label: usize) -> Vec<Contribution> {
        let l = self.head.n_labels();
        // Contribution relative to the mean over labels: a feature that
        // raises every label equally explains nothing. Only the best few are
        // kept, in a small array ordered by (contribution desc, id asc), so
        // explaining costs one pass and no sort of all features.
        let mut top: Vec<(f32, u32)> = Vec::with_capacity(EXPLAIN + 1);
        for &(j, v) in x {
            let row = &self.head.weights[j as usize * l..(j as usize + 1) * l];
            let mean = row.iter().sum::<f32>() / l as f32;
            let c = v * (row[label] - mean);
            if c <= 0.0 || c.is_nan() {
                continue;
            }
            if top.len() == EXPLAIN {
                let last = top[EXPLAIN - 1];
                if c < last.0 || (c == last.0 && j > last.1) {
                    continue;
                }
            }
            let at = top.partition_point(|&(tc, tj)| tc > c || (tc == c && tj < j));
            top.insert(at, (c, j));
            top.truncate(EXPLAIN);
        }
        top.into_iter()
            .map(|(c, j)| Contribution {
                feature: self.featurizer.name(j).to_string(),
                weight: c,
            })
            .collect()
    }
}
