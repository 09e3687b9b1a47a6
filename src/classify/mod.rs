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
use crate::features::{Featurizer, SparseVec, Vocabulary};
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
    /// The labels that can be urgent (those with urgent examples in the
    /// training data). When set, the head was trained on their messages
    /// only, and the urgent probability is P(urgent | one of them) × P(one
    /// of them): thanks to the ambulance crew or a question about a radar
    /// "right now" stops looking like an emergency. Empty in older models.
    pub labels: Vec<usize>,
}

impl UrgencyHead {
    /// P(one of the labels that can be urgent), 1 when there is no gate.
    pub fn gate(&self, probs: &[f32]) -> f32 {
        if self.labels.is_empty() {
            1.0
        } else {
            self.labels.iter().filter_map(|&k| probs.get(k)).sum()
        }
    }

    pub fn probability(&self, x: &SparseVec) -> f32 {
        let z = self.bias
            + x.iter()
                .map(|&(j, v)| v * self.weights[j as usize])
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// Renumbers features most frequent first (ascending idf, ties in their
/// old order) and permutes the weights alike; the model is unchanged.
///
/// Training ranks features by chi², which scatters the features that occur
/// in nearly every message (common letter pairs, `w:ال`-style words) over
/// the whole id range, so every prediction touched hundreds of cache lines
/// that each held one hot row. Numbered by frequency, the hot rows of the
/// packed weights and the per-thread occurrence counts sit together and
/// stay in cache.
pub(crate) fn frequency_order(
    vocab: Vocabulary,
    head: &mut LinearHead,
    urgency: Option<&mut UrgencyHead>,
) -> Vocabulary {
    let d = vocab.idf.len();
    let order = vocab.frequency_order();
    if order.iter().enumerate().all(|(new, &old)| new == old) {
        return vocab;
    }
    let l = head.n_labels();
    if head.weights.len() == d * l {
        head.weights = order
            .iter()
            .flat_map(|&old| head.weights[old * l..(old + 1) * l].iter().copied())
            .collect();
    }
    if let Some(u) = urgency
        && u.weights.len() == d
    {
        u.weights = order.iter().map(|&old| u.weights[old]).collect();
    }
    vocab.permuted(&order)
}

/// Eight weights on a 32-byte boundary, so a packed row never straddles
/// two cache lines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
struct Lane([f32; 8]);

/// The weights laid out for prediction, built when a model is loaded or
/// trained (the model file keeps the plain layout).
///
/// One row per feature holds its weight for every label, centred across
/// labels, then its urgency weight, then its idf, padded to whole lanes:
/// one prediction reads one 32-byte row per feature (six labels, urgency
/// and idf fit in one lane) where it read three scattered arrays before. Centring changes every
/// label's logit by the same amount, which the softmax ignores, and it is
/// what the explanation needs: a feature that raises every label equally
/// explains nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Packed {
    lanes: Vec<Lane>,
    per_row: usize,
    n_labels: usize,
}

impl Packed {
    fn new(head: &LinearHead, urgency: Option<&UrgencyHead>, featurizer: &Featurizer) -> Self {
        let l = head.n_labels();
        let per_row = (l + 2).div_ceil(8);
        let dim = head.weights.len() / l.max(1);
        let mut lanes = vec![Lane::default(); dim * per_row];
        for (j, row) in head.weights.chunks_exact(l.max(1)).enumerate() {
            let mean = row.iter().sum::<f32>() / l.max(1) as f32;
            let out = &mut lanes[j * per_row..(j + 1) * per_row];
            let mut put = |k: usize, v: f32| out[k / 8].0[k % 8] = v;
            for (k, &w) in row.iter().enumerate() {
                put(k, w - mean);
            }
            put(
                l,
                urgency
                    .and_then(|u| u.weights.get(j))
                    .copied()
                    .unwrap_or(0.0),
            );
            put(l + 1, featurizer.idf(j as u32));
        }
        Packed {
            lanes,
            per_row,
            n_labels: l,
        }
    }

    /// Scores term frequencies: `acc` (`per_row × 8` long) gets
    /// `Σ x · row` with `x = tf × idf` (the label logits, shifted alike,
    /// then the urgency logit), and the return value is `‖x‖`. The caller
    /// divides by it, which is the featurizer's length normalization
    /// applied after the sum instead of before.
    fn accumulate(&self, tf: &[(u32, f32)], acc: &mut [f32]) -> f32 {
        let idf_at = self.n_labels + 1;
        let mut norm = 0.0f32;
        if self.per_row == 1 {
            // Up to six labels: one lane per feature, and the sum stays
            // in registers (a fixed-size array the compiler vectorizes)
            // instead of going through memory for every feature.
            let mut a = [0.0f32; 8];
            for &(j, t) in tf {
                if let Some(lane) = self.lanes.get(j as usize) {
                    let v = t * lane.0[idf_at];
                    norm += v * v;
                    for (ak, wk) in a.iter_mut().zip(&lane.0) {
                        *ak += v * wk;
                    }
                }
            }
            for (o, ak) in acc.iter_mut().zip(a) {
                *o += ak;
            }
            return norm.sqrt();
        }
        for &(j, t) in tf {
            let start = j as usize * self.per_row;
            let Some(row) = self.lanes.get(start..start + self.per_row) else {
                continue;
            };
            let v = t * row[idf_at / 8].0[idf_at % 8];
            norm += v * v;
            for (a, lane) in acc.chunks_exact_mut(8).zip(row) {
                for (ak, wk) in a.iter_mut().zip(&lane.0) {
                    *ak += v * wk;
                }
            }
        }
        norm.sqrt()
    }

    /// Feature `j`'s centred weight for label `k`.
    fn weight(&self, j: u32, k: usize) -> f32 {
        self.lanes
            .get(j as usize * self.per_row + k / 8)
            .map_or(0.0, |lane| lane.0[k % 8])
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
    packed: Packed,
}

/// How many features an explanation lists.
const EXPLAIN: usize = 5;

impl Classifier {
    pub(crate) fn from_parts(
        normalizer: Normalizer,
        featurizer: Featurizer,
        head: LinearHead,
        urgency: Option<UrgencyHead>,
        meta: ModelMeta,
    ) -> Self {
        let packed = Packed::new(&head, urgency.as_ref(), &featurizer);
        Classifier {
            normalizer,
            featurizer,
            head,
            urgency,
            meta,
            packed,
        }
    }

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
        self.classify_normalized(&self.normalizer.normalize(text))
    }

    /// [`classify`](Self::classify) for text already normalized with this
    /// model's [`normalizer`](Self::normalizer), for callers that need the
    /// normalized text anyway.
    pub fn classify_normalized(&self, normalized: &str) -> Prediction {
        self.featurizer
            .with_term_frequencies(normalized, false, |tf| self.predict_tf(tf, true))
    }

    /// [`classify`](Self::classify) without the explanation (`explanation`
    /// is empty; everything else is identical), for callers that only act
    /// on the label, the probabilities and the urgent flag: the responder
    /// and batch labelling. Explaining is a second pass over the features
    /// and a string copy per listed feature.
    pub fn predict(&self, text: &str) -> Prediction {
        self.predict_normalized(&self.normalizer.normalize(text))
    }

    /// [`predict`](Self::predict) for already-normalized text.
    pub fn predict_normalized(&self, normalized: &str) -> Prediction {
        self.featurizer
            .with_term_frequencies(normalized, false, |tf| self.predict_tf(tf, false))
    }

    /// [`predict`](Self::predict) for term frequencies counted by a
    /// featurizer whose ids extend this classifier's (the FAQ's, see
    /// [`FaqIndex::load_for`](crate::FaqIndex::load_for)); ids past the
    /// classifier's own are ignored.
    pub(crate) fn predict_counted(&self, tf: &[(u32, f32)]) -> Prediction {
        self.predict_tf(tf, false)
    }

    fn predict_tf(&self, tf: &[(u32, f32)], explain: bool) -> Prediction {
        let l = self.head.n_labels();
        let mut acc = [0.0f32; 16];
        let mut wide = Vec::new();
        let acc: &mut [f32] = if self.packed.per_row <= 2 {
            &mut acc[..self.packed.per_row * 8]
        } else {
            wide.resize(self.packed.per_row * 8, 0.0);
            &mut wide
        };
        let norm = self.packed.accumulate(tf, acc);
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        let logits: Vec<f32> = acc[..l]
            .iter()
            .zip(&self.head.bias)
            .map(|(a, b)| a * scale + b)
            .collect();
        let probs = softmax(&logits, self.head.temperature);
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
        let urgent_score = self
            .urgency
            .as_ref()
            .map(|u| u.gate(&probs) / (1.0 + (-(acc[l] * scale + u.bias)).exp()));
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
            explanation: if explain {
                self.explain(tf, scale, best)
            } else {
                Vec::new()
            },
            no_signal: norm == 0.0,
        }
    }

    fn explain(&self, tf: &[(u32, f32)], scale: f32, label: usize) -> Vec<Contribution> {
        // The packed weights are centred across labels, so `v × w` is the
        // contribution relative to the mean label. Only the best few are
        // kept, in a small array ordered by (contribution desc, id asc), so
        // explaining costs one pass and no sort of all features.
        let mut top: Vec<(f32, u32)> = Vec::with_capacity(EXPLAIN + 1);
        let idf_at = self.packed.n_labels + 1;
        for &(j, t) in tf {
            let v = t * self.packed.weight(j, idf_at) * scale;
            let c = v * self.packed.weight(j, label);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_order_permutes_names_and_weights_together() {
        let vocab = Vocabulary {
            names: vec!["w:a".into(), "w:b".into(), "w:c".into(), "w:d".into()],
            idf: vec![3.0, 1.0, 2.0, 1.0],
        };
        let mut head = LinearHead {
            labels: vec!["x".into(), "y".into()],
            weights: vec![0.0, 0.1, 1.0, 1.1, 2.0, 2.1, 3.0, 3.1],
            bias: vec![0.0, 0.0],
            temperature: 1.0,
        };
        let mut urgency = UrgencyHead {
            weights: vec![10.0, 11.0, 12.0, 13.0],
            bias: 0.0,
            threshold: 0.5,
            labels: vec![],
        };
        let v = frequency_order(vocab, &mut head, Some(&mut urgency));
        assert_eq!(v.names, ["w:b", "w:d", "w:c", "w:a"]);
        assert_eq!(v.idf, [1.0, 1.0, 2.0, 3.0]);
        assert_eq!(head.weights, [1.0, 1.1, 3.0, 3.1, 2.0, 2.1, 0.0, 0.1]);
        assert_eq!(urgency.weights, [11.0, 13.0, 12.0, 10.0]);
        // Already in order: nothing moves.
        let again = frequency_order(v.clone(), &mut head, Some(&mut urgency));
        assert_eq!(again, v);
        assert_eq!(urgency.weights, [11.0, 13.0, 12.0, 10.0]);
    }

    /// The packed, one-pass prediction must agree with the plain layout it
    /// is built from: tf-idf vector, `x·W + b`, softmax, separate urgency
    /// weights, contributions relative to the label mean.
    #[test]
    fn packed_prediction_matches_the_plain_model() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let clf = Classifier::load(root.join("models/mujib.model")).unwrap();
        let texts = [
            "3ndi mo5alfa radar 600 dirham, kaif a3tared?",
            "شكرا للشرطة على سرعة الاستجابة 🌹",
            "someone is breaking into the cars في الـ parking RIGHT NOW",
            "التطبيق يعلق كل ما ادفع المخالفة",
            "",
            "🙂🙂",
            "how do I renew my emirates id",
        ];
        for text in texts {
            let p = clf.classify(text);
            let x = clf.features(text);
            let want = softmax(&clf.head.logits(&x), clf.head.temperature);
            for s in &p.scores {
                let k = clf.labels().iter().position(|l| *l == s.label).unwrap();
                assert!(
                    (s.score - want[k]).abs() < 1e-4,
                    "{text}: {} {}",
                    s.score,
                    want[k]
                );
            }
            if let (Some(u), Some(got)) = (&clf.urgency, p.urgent_score) {
                assert!(
                    (got - u.probability(&x) * u.gate(&want)).abs() < 1e-4,
                    "{text}"
                );
            }
            assert_eq!(p.no_signal, x.is_empty());
            let brief = clf.predict(text);
            assert!(brief.explanation.is_empty());
            assert_eq!(
                Prediction {
                    explanation: p.explanation.clone(),
                    ..brief
                },
                p
            );
            let l = clf.labels().len();
            let k = clf.labels().iter().position(|l| *l == p.label).unwrap();
            for c in &p.explanation {
                let (j, v) = x
                    .iter()
                    .find(|(j, _)| clf.featurizer.name(*j) == c.feature)
                    .copied()
                    .unwrap();
                let row = &clf.head.weights[j as usize * l..(j as usize + 1) * l];
                let mean = row.iter().sum::<f32>() / l as f32;
                assert!((c.weight - v * (row[k] - mean)).abs() < 1e-4, "{text}");
            }
        }
    }
}
