//! Evaluation: accuracy, per-label precision/recall/F1, confusion matrix,
//! macro-F1 per language, calibration error and urgent-flag quality.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMetrics {
    /// The label.
    pub label: String,
    /// Of the messages predicted as this label, the share that are.
    pub precision: f64,
    /// Of the messages that are this label, the share found.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Gold messages with this label.
    pub support: usize,
}

/// Quality of a yes/no flag (the urgent flag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    /// Share of flagged messages that are truly positive.
    pub precision: f64,
    /// Share of truly positive messages that are flagged.
    pub recall: f64,
    /// Truly positive messages.
    pub support: usize,
    /// Flagged messages.
    pub flagged: usize,
}

/// The evaluation report written by `train` and `eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Messages evaluated.
    pub n: usize,
    /// Share predicted correctly.
    pub accuracy: f64,
    /// Unweighted mean of per-label F1.
    pub macro_f1: f64,
    /// Per-label metrics, in label order.
    pub per_label: Vec<LabelMetrics>,
    /// Row = gold label, column = predicted label, both in `labels` order.
    pub confusion: Vec<Vec<usize>>,
    /// Label order of `confusion` (model labels, then any gold-only labels).
    pub labels: Vec<String>,
    /// Macro-F1 of each `lang` subset.
    pub macro_f1_by_lang: BTreeMap<String, f64>,
    /// Expected calibration error of the top label's confidence (10 bins).
    pub ece: f64,
    /// Urgent-flag quality, when the data has urgent annotations.
    pub urgent: Option<BinaryMetrics>,
}

/// One scored example for evaluation.
pub(crate) struct Scored<'a> {
    pub gold: usize,
    pub pred: usize,
    pub confidence: f32,
    pub lang: Option<&'a str>,
    pub urgent_gold: Option<bool>,
    pub urgent_pred: bool,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Macro-F1 over the labels that occur (as gold or prediction) in `items`.
fn macro_f1(items: &[&Scored<'_>], n_labels: usize) -> (f64, Vec<(f64, f64, f64, usize)>) {
    let mut per = Vec::with_capacity(n_labels);
    let mut sum = 0.0;
    let mut present = 0;
    for l in 0..n_labels {
        let tp = items.iter().filter(|s| s.gold == l && s.pred == l).count();
        let gold = items.iter().filter(|s| s.gold == l).count();
        let pred = items.iter().filter(|s| s.pred == l).count();
        let (p, r) = (ratio(tp, pred), ratio(tp, gold));
        let f = f1(p, r);
        if gold + pred > 0 {
            sum += f;
            present += 1;
        }
        per.push((p, r, f, gold));
    }
    (
        if present == 0 {
            0.0
        } else {
            sum / present as f64
        },
        per,
    )
}

pub(crate) fn evaluate(labels: &[String], items: &[Scored<'_>]) -> EvalReport {
    let n_labels = labels.len();
    let refs: Vec<&Scored<'_>> = items.iter().collect();
    let (macro_all, per) = macro_f1(&refs, n_labels);
    let mut confusion = vec![vec![0usize; n_labels]; n_labels];
    for s in items {
        confusion[s.gold][s.pred] += 1;
    }
    let mut by_lang: BTreeMap<String, Vec<&Scored<'_>>> = BTreeMap::new();
    for s in items {
        if let Some(l) = s.lang {
            by_lang.entry(l.to_string()).or_default().push(s);
        }
    }
    let macro_f1_by_lang = by_lang
        .into_iter()
        .map(|(l, v)| (l, macro_f1(&v, n_labels).0))
        .collect();
    let urgent_items: Vec<_> = items
        .iter()
        .filter_map(|s| s.urgent_gold.map(|g| (g, s.urgent_pred)))
        .collect();
    let urgent = urgent_items.iter().any(|&(g, _)| g).then(|| {
        let tp = urgent_items.iter().filter(|&&(g, p)| g && p).count();
        let support = urgent_items.iter().filter(|&&(g, _)| g).count();
        let flagged = urgent_items.iter().filter(|&&(_, p)| p).count();
        BinaryMetrics {
            precision: ratio(tp, flagged),
            recall: ratio(tp, support),
            support,
            flagged,
        }
    });
    EvalReport {
        n: items.len(),
        accuracy: ratio(
            items.iter().filter(|s| s.gold == s.pred).count(),
            items.len(),
        ),
        macro_f1: macro_all,
        per_label: per
            .into_iter()
            .enumerate()
            .map(|(i, (precision, recall, f1, support))| LabelMetrics {
                label: labels[i].clone(),
                precision,
                recall,
                f1,
                support,
            })
            .collect(),
        confusion,
        labels: labels.to_vec(),
        macro_f1_by_lang,
        ece: expected_calibration_error(items.iter().map(|s| (s.confidence, s.gold == s.pred))),
        urgent,
    }
}

/// ECE with 10 equal-width confidence bins (Guo et al., 2017).
pub(crate) fn expected_calibration_error(items: impl Iterator<Item = (f32, bool)>) -> f64 {
    let mut bins = [(0usize, 0.0f64, 0usize); 10];
    let mut n = 0usize;
    for (conf, correct) in items {
        let b = ((conf.clamp(0.0, 1.0) * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += f64::from(conf);
        bins[b].2 += usize::from(correct);
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    bins.iter()
        .filter(|b| b.0 > 0)
        .map(|&(count, conf_sum, correct)| {
            let c = count as f64;
            (correct as f64 / c - conf_sum / c).abs() * c / n as f64
        })
        .sum()
}

impl EvalReport {
    /// A compact human-readable rendering.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "n={}  accuracy={:.4}  macro-F1={:.4}  ECE={:.4}",
            self.n, self.accuracy, self.macro_f1, self.ece
        );
        let _ = writeln!(
            s,
            "{:<20} {:>9} {:>9} {:>9} {:>8}",
            "label", "precision", "recall", "f1", "support"
        );
        for m in &self.per_label {
            let _ = writeln!(
                s,
                "{:<20} {:>9.4} {:>9.4} {:>9.4} {:>8}",
                m.label, m.precision, m.recall, m.f1, m.support
            );
        }
        let _ = writeln!(s, "macro-F1 by lang:");
        for (l, f) in &self.macro_f1_by_lang {
            let _ = writeln!(s, "  {l:<12} {f:.4}");
        }
        if let Some(u) = &self.urgent {
            let _ = writeln!(
                s,
                "urgent: precision={:.4} recall={:.4} (support {}, flagged {})",
                u.precision, u.recall, u.support, u.flagged
            );
        }
        let _ = writeln!(
            s,
            "confusion (rows gold, columns predicted; order as above):"
        );
        for (l, row) in self.labels.iter().zip(&self.confusion) {
            let cells: Vec<String> = row.iter().map(|c| format!("{c:>5}")).collect();
            let _ = writeln!(s, "  {:<20}{}", l, cells.join(""));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(gold: usize, pred: usize, conf: f32, lang: &'static str) -> Scored<'static> {
        Scored {
            gold,
            pred,
            confidence: conf,
            lang: Some(lang),
            urgent_gold: Some(gold == 0),
            urgent_pred: pred == 0,
        }
    }

    #[test]
    fn metrics_on_a_known_table() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let items = vec![
            item(0, 0, 0.9, "en"),
            item(0, 1, 0.6, "en"),
            item(1, 1, 0.8, "ar"),
            item(1, 1, 0.7, "ar"),
        ];
        let r = evaluate(&labels, &items);
        assert_eq!(r.accuracy, 0.75);
        assert_eq!(r.confusion, vec![vec![1, 1], vec![0, 2]]);
        // a: p=1 r=.5 f=.667; b: p=.667 r=1 f=.8
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
        assert_eq!(r.macro_f1_by_lang["ar"], 1.0);
        let u = r.urgent.unwrap();
        assert_eq!((u.precision, u.recall), (1.0, 0.5));
    }

    #[test]
    fn ece_is_zero_when_calibrated_and_large_when_not() {
        let good = (0..10).map(|i| (0.8f32, i < 8));
        assert!(expected_calibration_error(good) < 1e-6);
        let bad = (0..10).map(|_| (0.95f32, false));
        assert!(expected_calibration_error(bad) > 0.9);
    }
}
