//! Fifth stage: finds the FAQ entry that answers a message.
//!
//! Every phrasing of every entry is a tf-idf vector over words and
//! character 4-grams (the classifier's normalizer, and with
//! [`FaqIndex::load_for`] the classifier's feature ids, so the responder
//! counts a message once); a message is scored against phrasings and entry
//! centroids through an inverted index, an entry scores as a blend of its
//! best phrasing and its centroid, and the classifier's label probabilities
//! add a small bonus. Arabizi is also transliterated to Arabic script so it
//! can reach entries phrased only in Arabic. A learned rule
//! ([`NoMatchRule`]) decides when no entry answers.

use std::path::Path;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::{
    FeatureConfig, Featurizer, SparseVec, Vocabulary, frequent_words, select_vocabulary,
};
use crate::normalize::Normalizer;
pub use crate::tokenize::arabizi_to_arabic;

mod no_match;
use no_match::{Evidence, Sample};
pub use no_match::{FaqCase, NoMatchRule};

/// An answer in both languages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bilingual {
    /// Arabic text.
    pub ar: String,
    /// English text.
    pub en: String,
}

/// One FAQ entry as stored in `data/faq.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaqEntry {
    /// Unique id, e.g. `traffic.pay_fine`.
    pub id: String,
    /// The label of messages this entry answers.
    pub label: String,
    /// Ways people ask it (Arabic and English).
    pub questions: Vec<String>,
    /// The answer.
    pub answer: Bilingual,
}

/// A matched entry and its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaqMatch {
    /// Entry id.
    pub id: String,
    /// Entry label.
    pub label: String,
    /// Similarity plus the label bonus: what entries are ranked by.
    pub score: f32,
    /// Similarity alone (a blend of the best phrasing's cosine and the
    /// entry centroid's), which the no-match decision looks at.
    #[serde(default)]
    pub similarity: f32,
    /// Position of the entry in the index.
    #[serde(skip)]
    pub index: usize,
}

/// Minimum similarity for a match when the FAQ is too small to learn a
/// no-match rule from (fewer than [`MIN_CALIBRATION_ENTRIES`] entries).
/// Such an FAQ cannot tell common words from rare ones by idf, so one
/// shared short word scores high; 0.25 keeps "football match tonight" away
/// from "how to object to a fine" in a three-entry FAQ (it scores 0.21).
pub const DEFAULT_THRESHOLD: f32 = 0.25;
/// Entries an FAQ needs before its no-match rule is learned from it.
pub const MIN_CALIBRATION_ENTRIES: usize = 12;
/// Most entries the no-match rule is learned from; larger FAQs use an even
/// sample, which keeps loading fast with thousands of entries.
const CALIBRATION_ENTRIES: usize = 600;
/// Share of unanswerable messages assumed when the no-match cut is chosen.
pub(crate) const NO_MATCH_PRIOR: f32 = 0.2;
/// Weight of the best phrasing's cosine against the centroid's.
const PHRASE_WEIGHT: f32 = 0.25;

/// Weight of the classifier's probability for the entry's label: enough
/// to break a near tie, never enough to hide a clearly closer entry of
/// another label. Chosen on the calibration set's 200 answerable messages
/// (top-1 / MRR): 0 0.825 / 0.891, 0.02 0.825 / 0.898, 0.05 0.815 / 0.895,
/// 0.1 0.810 / 0.876, 0.3 0.720 / 0.788. At 0.3 (the earlier default) the
/// bonus outweighed most differences in similarity, so a wrongly
/// predicted label dragged the answer into the wrong part of the FAQ.
pub const DEFAULT_LABEL_WEIGHT: f32 = 0.02;

/// An FAQ ready for matching. `Send + Sync`.
#[derive(Debug, Clone)]
pub struct FaqIndex {
    entries: Vec<FaqEntry>,
    normalizer: Normalizer,
    featurizer: Featurizer,
    /// Decides "no entry answers this".
    rule: NoMatchRule,
    /// Both inverted lists of every feature in one flat array (CSR): for
    /// feature `j`, `(phrasing, weight)` pairs from `spans[j][0]` to
    /// `spans[j][1]`, then `(entry, weight)` pairs of entry centroids up to
    /// `spans[j + 1][0]`. One lookup finds both lists, and a query touches
    /// two cache lines per feature instead of four.
    spans: Vec<[u32; 2]>,
    /// Each posting packs an id and a quantized weight into 4 bytes (see
    /// [`pack`]), so a feature's lists take half the cache lines.
    postings: Vec<u32>,
    /// phrasing -> entry
    owner: Vec<u32>,
    label_weight: f32,
    /// The FAQ's idf of each of `featurizer`'s features, 0 for features no
    /// phrasing has (the classifier's own, when the featurizer is shared).
    weights: Vec<f32>,
    /// Each feature's position in the FAQ's own vocabulary (most frequent
    /// first): ties among a query's heaviest features are broken by it, so
    /// an index gives the same answers whether its ids extend the
    /// classifier's or are its own.
    faq_rank: Vec<u32>,
    /// Fingerprint of the classifier featurizer this index's ids extend,
    /// if any (see [`FaqIndex::load_for`]).
    base: Option<u64>,
    /// Distinct entry labels, and each entry's position in it, so the label
    /// bonus costs a table lookup per entry instead of string compares.
    labels: Vec<String>,
    entry_label: Vec<u16>,
}

impl FaqIndex {
    /// Reads `faq.jsonl`, reporting bad lines by number, and learns the
    /// no-match rule from the FAQ itself.
    pub fn load(path: impl AsRef<Path>, normalizer: &Normalizer) -> Result<Self> {
        Self::new(read_entries(path.as_ref())?, normalizer)
    }

    /// Reads `faq.jsonl` and learns the no-match rule from the calibration
    /// cases in `calibration` (see [`calibrate`](Self::calibrate)); the
    /// same as [`load`](Self::load) then
    /// [`calibrate_from`](Self::calibrate_from), without learning a rule
    /// from the FAQ first only to replace it (about half a second).
    pub fn load_calibrated(
        path: impl AsRef<Path>,
        normalizer: &Normalizer,
        calibration: impl AsRef<Path>,
    ) -> Result<Self> {
        Self::build(read_entries(path.as_ref())?, normalizer, None)?.calibrate_from(calibration)
    }

    /// Reads `faq.jsonl` into the index a [`Responder`](crate::Responder)
    /// uses with `classifier`: its normalizer, and feature ids that extend
    /// the classifier's, so a message is counted once for both (when the
    /// classifier's settings cover the FAQ's words and 4-grams; otherwise
    /// the index counts its own). The no-match rule is learned from the
    /// cases in `calibration` when given, else from the FAQ itself.
    pub fn load_for(
        path: impl AsRef<Path>,
        classifier: &crate::Classifier,
        calibration: Option<&Path>,
    ) -> Result<Self> {
        let entries = read_entries(path.as_ref())?;
        let normalizer = classifier.normalizer();
        let index = Self::build(entries, normalizer, Some(classifier.featurizer()))?;
        match calibration {
            Some(cases) => index.calibrate_from(cases),
            None => index.with_learned_rule(),
        }
    }

    /// Builds the index from entries and learns its no-match rule from
    /// them (see [`NoMatchRule`]).
    pub fn new(entries: Vec<FaqEntry>, normalizer: &Normalizer) -> Result<Self> {
        Self::build(entries, normalizer, None)?.with_learned_rule()
    }

    /// The index with its no-match rule learned from its own entries.
    fn with_learned_rule(mut self) -> Result<Self> {
        self.rule = NoMatchRule::learn(&self.entries, &self.normalizer)?;
        Ok(self)
    }

    /// The index alone, with the fallback no-match rule; its feature ids
    /// extend `base`'s when given and compatible.
    fn build(
        entries: Vec<FaqEntry>,
        normalizer: &Normalizer,
        base: Option<&Featurizer>,
    ) -> Result<Self> {
        if entries.is_empty() {
            return Err(Error::param("faq", "no entries"));
        }
        let mut seen = std::collections::HashSet::new();
        for e in &entries {
            if !seen.insert(e.id.as_str()) {
                return Err(Error::param(
                    "faq",
                    format!("duplicate entry id `{}`", e.id),
                ));
            }
        }
        let mut texts = Vec::new();
        let mut owner = Vec::new();
        for (k, e) in entries.iter().enumerate() {
            for q in &e.questions {
                texts.push(normalizer.normalize(q).into_owned());
                owner.push(k as u32);
            }
        }
        let config = faq_features();
        let ids: Vec<usize> = owner.iter().map(|&o| o as usize).collect();
        let vocab = select_vocabulary(&config, None, &texts, &ids, entries.len());
        // Numbered most frequent first, so the spans and posting lists of
        // the n-grams most queries share sit together and stay in cache: a
        // query was bound by one cache miss per feature on the postings.
        let vocab = vocab.most_frequent_first();
        let (featurizer, weights, faq_rank, base) =
            match base.filter(|b| covers(b.config(), &config)) {
                Some(b) => {
                    let (featurizer, weights, rank) = joint_featurizer(b, vocab)?;
                    (featurizer, weights, rank, Some(b.fingerprint()))
                }
                None => {
                    let weights = vocab.idf.clone();
                    let rank = (0..weights.len() as u32).collect();
                    // Queries are read as written and, when Arabizi, also
                    // transliterated; phrasings are counted as written.
                    let config = FeatureConfig {
                        transliterate: true,
                        ..config
                    };
                    // The phrasings' own words are what queries repeat most;
                    // their features are precomputed, as the classifier's
                    // frequent words are.
                    let cached = frequent_words(&texts, CACHED_WORDS);
                    (
                        Featurizer::new(config, None, vocab, &cached)?,
                        weights,
                        rank,
                        None,
                    )
                }
            };
        let mut postings = vec![Vec::new(); featurizer.dim()];
        // Features in a large share of phrasings (the n-gram " ال") carry
        // almost no weight after idf but would make every lookup walk a long
        // list; leaving them out keeps matching fast with thousands of entries.
        let mut df = vec![0usize; featurizer.dim()];
        let vectors: Vec<SparseVec> = texts
            .iter()
            .map(|t| {
                featurizer.with_term_frequencies_as(t, true, false, |tf| {
                    let mut v = Vec::new();
                    weigh(tf, &weights, &mut v);
                    v
                })
            })
            .collect();
        for v in &vectors {
            for &(j, _) in v {
                df[j as usize] += 1;
            }
        }
        let max_df = (texts.len() / 50).max(50);
        for (q, v) in vectors.iter().enumerate() {
            for &(j, w) in v {
                if df[j as usize] <= max_df {
                    postings[j as usize].push((q as u32, w));
                }
            }
        }
        cap_postings(&mut postings, MAX_PHRASING_POSTINGS);
        // Each entry's centroid (the normalized sum of its phrasings) holds
        // the vocabulary of all of them at once, which helps paraphrases
        // that share a word with one phrasing and a word with another.
        let mut centroids: Vec<FxHashMap<u32, f32>> = vec![Default::default(); entries.len()];
        for (q, v) in vectors.iter().enumerate() {
            for &(j, w) in v {
                *centroids[owner[q] as usize].entry(j).or_insert(0.0) += w;
            }
        }
        let mut centroid_postings = vec![Vec::new(); featurizer.dim()];
        for (e, c) in centroids.iter().enumerate() {
            let norm = c.values().map(|w| w * w).sum::<f32>().sqrt().max(1e-12);
            let mut items: Vec<(u32, f32)> = c.iter().map(|(&j, &w)| (j, w / norm)).collect();
            items.sort_by_key(|&(j, _)| j);
            for (j, w) in items {
                if df[j as usize] <= max_df {
                    centroid_postings[j as usize].push((e as u32, w));
                }
            }
        }
        cap_postings(&mut centroid_postings, MAX_CENTROID_POSTINGS);
        let total: usize = postings
            .iter()
            .chain(&centroid_postings)
            .map(Vec::len)
            .sum();
        // Postings number phrasings and entries in 20 bits (see `pack`).
        if total >= u32::MAX as usize || owner.len().max(entries.len()) > MAX_PHRASINGS {
            return Err(Error::param(
                "faq",
                format!(
                    "an index holds at most {MAX_PHRASINGS} phrasings and entries, and 4 billion postings"
                ),
            ));
        }
        let mut spans = Vec::with_capacity(postings.len() + 1);
        let mut flat = Vec::with_capacity(total);
        for (p, c) in postings.iter().zip(&centroid_postings) {
            let start = flat.len() as u32;
            flat.extend_from_slice(p);
            spans.push([start, flat.len() as u32]);
            flat.extend_from_slice(c);
        }
        spans.push([flat.len() as u32; 2]);
        let postings = flat.into_iter().map(|(id, w)| pack(id, w)).collect();
        let mut labels: Vec<String> = Vec::new();
        let mut entry_label = Vec::with_capacity(entries.len());
        for e in &entries {
            let at = match labels.iter().position(|l| *l == e.label) {
                Some(at) => at,
                None => {
                    labels.push(e.label.clone());
                    labels.len() - 1
                }
            };
            entry_label.push(at as u16);
        }
        if labels.len() > usize::from(u16::MAX) {
            return Err(Error::param("faq", "too many distinct labels"));
        }
        Ok(FaqIndex {
            labels,
            entry_label,
            spans,
            entries,
            normalizer: normalizer.clone(),
            featurizer,
            postings,
            owner,
            weights,
            faq_rank,
            base,
            rule: NoMatchRule::fallback(),
            label_weight: DEFAULT_LABEL_WEIGHT,
        })
    }

    /// Changes the no-match cut: a message gets no entry when the rule's
    /// probability that none answers it is at least `threshold` (0..=1).
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.rule.threshold = threshold;
        self
    }

    /// Changes the weight of the label bonus.
    pub fn with_label_weight(mut self, weight: f32) -> Self {
        self.label_weight = weight;
        self
    }

    /// The current no-match cut on the probability that no entry answers.
    pub fn threshold(&self) -> f32 {
        self.rule.threshold
    }

    /// The no-match rule in use.
    pub fn no_match_rule(&self) -> &NoMatchRule {
        &self.rule
    }

    /// All entries.
    pub fn entries(&self) -> &[FaqEntry] {
        &self.entries
    }

    /// An entry by position.
    pub fn entry(&self, index: usize) -> Option<&FaqEntry> {
        self.entries.get(index)
    }

    /// The `k` best entries for a raw message, best first, whatever their
    /// score. `label_probs` (label, probability) from the classifier adds
    /// `label_weight × P(entry label)` to each entry.
    pub fn search(&self, text: &str, label_probs: &[(&str, f32)], k: usize) -> Vec<FaqMatch> {
        self.search_normalized(&self.normalizer.normalize(text), label_probs, k)
    }

    /// [`search`](Self::search) for text already normalized with this
    /// index's normalizer (as the [`Responder`](crate::Responder) has it),
    /// which saves normalizing twice.
    pub fn search_normalized(
        &self,
        normalized: &str,
        label_probs: &[(&str, f32)],
        k: usize,
    ) -> Vec<FaqMatch> {
        self.probe(normalized, label_probs, k).0
    }

    /// The `k` best entries for a raw message and the no-match decision.
    pub fn lookup(&self, text: &str, label_probs: &[(&str, f32)], k: usize) -> FaqLookup {
        self.lookup_normalized(&self.normalizer.normalize(text), label_probs, k)
    }

    /// [`lookup`](Self::lookup) for already-normalized text.
    pub fn lookup_normalized(
        &self,
        normalized: &str,
        label_probs: &[(&str, f32)],
        k: usize,
    ) -> FaqLookup {
        self.with_counts(normalized, |tf| self.lookup_counted(tf, label_probs, k))
    }

    /// The best `k` entries and the best one's evidence.
    fn probe(
        &self,
        normalized: &str,
        label_probs: &[(&str, f32)],
        k: usize,
    ) -> (Vec<FaqMatch>, Option<Evidence>) {
        self.with_counts(normalized, |tf| self.probe_counted(tf, label_probs, k))
    }

    /// [`probe`](Self::probe) for a message already counted by
    /// [`with_counts`](Self::with_counts).
    fn probe_counted(
        &self,
        tf: &[(u32, f32)],
        label_probs: &[(&str, f32)],
        k: usize,
    ) -> (Vec<FaqMatch>, Option<Evidence>) {
        self.with_scratch(|scratch| {
            let mut x = std::mem::take(&mut scratch.query);
            let raw = self.query_from(tf, &mut x);
            // The wording is read whole, with every feature counted; only
            // the lookups are cut short.
            let text = self.rule.text_score_counts(tf);
            self.keep_heaviest(&mut x);
            let (found, mut evidence) = self.score(&x, raw, label_probs, k, scratch);
            if let Some(e) = evidence.as_mut() {
                e.text = text;
            }
            scratch.query = x;
            (found, evidence)
        })
    }

    /// Calls `f` with a normalized message's features and their sublinear
    /// term frequencies, as written and, when Arabizi, also transliterated.
    /// An index built by [`load_for`](Self::load_for) counts with the
    /// classifier's ids, so the [`Responder`](crate::Responder) counts a
    /// message once and hands the same counts to both.
    pub(crate) fn with_counts<R>(&self, normalized: &str, f: impl FnOnce(&[(u32, f32)]) -> R) -> R {
        self.featurizer
            .with_term_frequencies_as(normalized, false, true, f)
    }

    /// Whether this index counts messages exactly as `featurizer` does
    /// (see [`load_for`](Self::load_for)).
    pub(crate) fn counts_like(&self, featurizer: &Featurizer) -> bool {
        self.base == Some(featurizer.fingerprint())
    }

    /// [`lookup_normalized`](Self::lookup_normalized) for a message already
    /// counted by [`with_counts`](Self::with_counts).
    pub(crate) fn lookup_counted(
        &self,
        tf: &[(u32, f32)],
        label_probs: &[(&str, f32)],
        k: usize,
    ) -> FaqLookup {
        let (mut matches, evidence) = self.probe_counted(tf, label_probs, k.max(1));
        let no_match_probability = self.rule.probability(evidence.as_ref());
        matches.truncate(k);
        FaqLookup {
            no_match: no_match_probability >= self.rule.threshold,
            no_match_probability,
            matches,
        }
    }

    /// Runs `f` with this thread's scratch buffers.
    fn with_scratch<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        SCRATCH.with(|cell| {
            // Reentrancy cannot happen here, but a fresh scratch is correct
            // too, only slower.
            let mut fresh = Scratch::default();
            let mut guard = cell.try_borrow_mut();
            match guard.as_deref_mut() {
                Ok(s) => f(s),
                Err(_) => f(&mut fresh),
            }
        })
    }

    /// The query vector of counted features into `x`: their tf-idf over
    /// the FAQ's features, unsorted, all of them (see
    /// [`keep_heaviest`](Self::keep_heaviest)).
    fn query_from(&self, tf: &[(u32, f32)], x: &mut Vec<(u32, f32)>) -> f32 {
        weigh(tf, &self.weights, x)
    }

    /// Keeps the query's `QUERY_FEATURES` heaviest features, the ones looked
    /// up: the light ones are common n-grams whose long posting lists cost
    /// most and move a cosine least. The `PHRASING_FEATURES` heaviest of
    /// them come first, the only ones whose phrasing lists are read.
    fn keep_heaviest(&self, x: &mut Vec<(u32, f32)>) {
        let rank = |j: u32| self.faq_rank.get(j as usize).copied().unwrap_or(u32::MAX);
        let heavier = |a: &(u32, f32), b: &(u32, f32)| {
            b.1.total_cmp(&a.1).then_with(|| rank(a.0).cmp(&rank(b.0)))
        };
        if x.len() > QUERY_FEATURES {
            x.select_nth_unstable_by(QUERY_FEATURES, heavier);
            x.truncate(QUERY_FEATURES);
        }
        if x.len() > PHRASING_FEATURES {
            x.select_nth_unstable_by(PHRASING_FEATURES, heavier);
        }
    }

    /// Replaces the no-match rule with one learned from hand-written
    /// messages, answerable or not (see [`NoMatchRule`]). Every `expected`
    /// id must be an entry of this FAQ.
    pub fn calibrate(self, cases: &[FaqCase]) -> Result<Self> {
        for (i, case) in cases.iter().enumerate() {
            if let Some(id) = self.unknown_id(case) {
                return Err(Error::param(
                    "faq calibration",
                    format!("case {}: `{id}` is not an entry of this FAQ", i + 1),
                ));
            }
        }
        self.calibrate_checked(cases.iter())
    }

    /// [`calibrate`](Self::calibrate) with the cases of a JSONL file (see
    /// [`FaqCase::load`]); an unknown entry id is reported with its line.
    pub fn calibrate_from(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let cases = FaqCase::load_numbered(path)?;
        for (line, case) in &cases {
            if let Some(id) = self.unknown_id(case) {
                return Err(Error::Data {
                    path: path.to_path_buf(),
                    line: *line,
                    reason: format!("`expected`: `{id}` is not an entry of the FAQ"),
                });
            }
        }
        self.calibrate_checked(cases.iter().map(|(_, case)| case))
    }

    /// The case's expected id when it names no entry of this FAQ.
    fn unknown_id<'c>(&self, case: &'c FaqCase) -> Option<&'c str> {
        case.expected
            .as_deref()
            .filter(|id| !self.entries.iter().any(|e| e.id == *id))
    }

    /// Learns the rule from cases whose ids are known to be entries.
    fn calibrate_checked<'c>(mut self, cases: impl Iterator<Item = &'c FaqCase>) -> Result<Self> {
        let mut samples = Vec::new();
        for case in cases {
            let normalized = self.normalizer.normalize(&case.text);
            let mut lookups = Vec::new();
            let mut query = Vec::new();
            let mut raw = 0.0;
            self.with_counts(&normalized, |tf| {
                raw = self.query_from(tf, &mut lookups);
                query = unit(tf);
            });
            self.keep_heaviest(&mut lookups);
            // `score` leaves the text score at 0: the rule being learned
            // supplies its own.
            let (_, evidence) = self.with_scratch(|s| self.score(&lookups, raw, &[], 1, s));
            samples.push(Sample {
                evidence: evidence.unwrap_or_default(),
                query,
                none: case.expected.is_none(),
            });
        }
        self.rule = NoMatchRule::calibrate(&samples, self.featurizer.dim())?;
        Ok(self)
    }

    /// Scores entries for a query vector (at most `QUERY_FEATURES` long)
    /// using `scratch`'s accumulators, which are all zero on entry and left
    /// all zero on return. Returns the best `k` and the evidence of the best.
    fn score(
        &self,
        x: &[(u32, f32)],
        raw_mass: f32,
        label_probs: &[(&str, f32)],
        k: usize,
        scratch: &mut Scratch,
    ) -> (Vec<FaqMatch>, Option<Evidence>) {
        scratch.fit(self.owner.len(), self.entries.len());
        let Scratch {
            phrase,
            acc,
            touched,
            entries,
            ranges,
            ..
        } = scratch;
        // Every feature's two lists, found first: the span loads are
        // independent, so their cache misses overlap instead of each one
        // stalling the accumulation loop below.
        ranges.clear();
        // `keep_heaviest` put the features whose phrasing lists are read
        // first; the others get an empty phrasing range.
        ranges.extend(x.iter().enumerate().map(|(i, &(j, v))| {
            let [a, b] = self.spans[j as usize];
            let c = self.spans[j as usize + 1][0];
            let a = if i < PHRASING_FEATURES { a } else { b };
            (a, b, c, v)
        }));
        // `touched` collects each phrasing once, on its first posting,
        // without a branch: every posting writes its phrasing to the next
        // free slot, which only advances when the accumulator was zero
        // (first touches are too irregular to predict). `entries` collects
        // each entry once the same way, from centroid postings and touched
        // phrasings, on its `seen` flag.
        let (most, centroid_postings) = ranges.iter().fold((0, 0), |(p, q), &(a, b, c, _)| {
            (p + (b - a) as usize, q + (c - b) as usize)
        });
        // Every slot is written before it is read, so the buffers only
        // need to be long enough, not zeroed.
        if touched.len() <= most {
            touched.resize(most + 1, 0);
        }
        if entries.len() <= centroid_postings + most {
            entries.resize(centroid_postings + most + 1, 0);
        }
        // Plain slices: through the `Vec`s, every store into one buffer
        // made the compiler reload the others' pointers.
        let (phrase, acc) = (phrase.as_mut_slice(), acc.as_mut_slice());
        let (touched_at, entries_at) = (touched.as_mut_slice(), entries.as_mut_slice());
        let mut n = 0;
        let mut m = 0;
        for (i, &(a, b, c, v)) in ranges.iter().enumerate() {
            // A query was bound by one cache miss per feature on its
            // posting lists, which sit at random places in a table of
            // megabytes; asking for the lists a few features ahead lets
            // those misses overlap with this feature's work.
            if let Some(&(a, _, c, _)) = ranges.get(i + PREFETCH_AHEAD) {
                prefetch(&self.postings, a as usize, c as usize);
            }
            for &p in &self.postings[a as usize..b as usize] {
                let (q, w) = unpack(p);
                let slot = &mut phrase[q as usize];
                touched_at[n] = q;
                n += usize::from(*slot == 0.0);
                *slot += v * w;
            }
            for &p in &self.postings[b as usize..c as usize] {
                let (e, w) = unpack(p);
                let a = &mut acc[e as usize];
                entries_at[m] = e;
                m += usize::from(!a.seen);
                a.seen = true;
                a.centroid += v * w;
            }
        }
        for &q in &touched_at[..n] {
            let e = self.owner[q as usize];
            let a = &mut acc[e as usize];
            entries_at[m] = e;
            m += usize::from(!a.seen);
            a.seen = true;
            a.best = a.best.max(phrase[q as usize]);
            phrase[q as usize] = 0.0;
        }
        let bonus: Vec<f32> = self
            .labels
            .iter()
            .map(|l| {
                label_probs
                    .iter()
                    .find(|(pl, _)| pl == l)
                    .map_or(0.0, |&(_, p)| p)
            })
            .collect();
        // One pass over the touched entries (thousands in a large FAQ)
        // keeps only what the answer needs: the best `k` rows in order, and
        // the two highest similarities, for the runner-up.
        // (score, entry, similarity, best phrasing, centroid)
        type Row = (f32, usize, f32, f32, f32);
        let order = |a: &Row, b: &Row| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        let keep = k.max(1);
        let mut scored: Vec<Row> = Vec::with_capacity(keep + 1);
        // (similarity, entry) of the two most similar entries.
        let mut similar = [(f32::NEG_INFINITY, usize::MAX); 2];
        for &e in &entries_at[..m] {
            let e = e as usize;
            let p = bonus[self.entry_label[e] as usize];
            let a = std::mem::take(&mut acc[e]);
            let (b, c) = (a.best, a.centroid);
            let s = PHRASE_WEIGHT * b + (1.0 - PHRASE_WEIGHT) * c;
            let row = (s + self.label_weight * p, e, s, b, c);
            if scored.len() < keep || order(&row, &scored[keep - 1]).is_lt() {
                let at = scored.partition_point(|r| order(r, &row).is_lt());
                scored.insert(at, row);
                scored.truncate(keep);
            }
            if s > similar[0].0 {
                similar = [(s, e), similar[0]];
            } else if s > similar[1].0 {
                similar[1] = (s, e);
            }
        }
        // The runner-up is the most similar entry other than the winner,
        // wherever the label bonus ranked it.
        let evidence = scored.first().map(|w| {
            let (covered, gap) = self.reach(ranges, w.1 as u32);
            let mass = x.iter().map(|&(_, v)| v * v).sum::<f32>().max(1e-12)
                + COVER_PRIOR / raw_mass.max(1e-12);
            Evidence {
                similarity: w.2,
                phrase: w.3,
                centroid: w.4,
                coverage: covered / mass,
                runner_up: similar
                    .iter()
                    .find(|&&(_, e)| e != w.1)
                    .map_or(0.0, |&(s, _)| s.max(0.0)),
                text: 0.0,
                gap: gap.max((GAP_PRIOR / (raw_mass + GAP_PRIOR)).sqrt()),
            }
        });
        scored.truncate(k);
        let matches = scored
            .into_iter()
            .map(|(score, e, similarity, ..)| FaqMatch {
                id: self.entries[e].id.clone(),
                label: self.entries[e].label.clone(),
                score,
                similarity,
                index: e,
            })
            .collect();
        (matches, evidence)
    }

    /// What the query's looked-up features (`ranges`) leave to `entry`:
    /// the squared weight of those whose centroid list has it (the
    /// coverage, before dividing by the message's weight), and the gap,
    /// the heaviest weight of those whose list lacks it. Found for the
    /// winner alone by one binary search per feature, instead of adding to
    /// every touched entry's accumulator on every posting.
    ///
    /// Why the gap: an unanswerable message is often an entry's neighbour that
    /// asks for one thing the entry never mentions ("can I pay my fines in
    /// instalments"), and coverage, a sum, dilutes that one word among the
    /// many the entry does share. On the FAQ test set this input moved
    /// no-match recall from 0.66 to 0.73 and precision from 0.81 to 0.80
    /// (means over rules learned from ten 90% subsets of the calibration
    /// file), while the out-of-fold AUC on the calibration messages moved
    /// only from 0.9365 to 0.9370.
    fn reach(&self, ranges: &[(u32, u32, u32, f32)], entry: u32) -> (f32, f32) {
        ranges
            .iter()
            .fold((0.0, 0.0), |(covered, gap), &(_, b, c, v)| {
                let has = self.postings[b as usize..c as usize]
                    .binary_search_by_key(&entry, |&p| p >> WEIGHT_BITS)
                    .is_ok();
                if has {
                    (covered + v * v, gap)
                } else {
                    (covered, f32::max(gap, v))
                }
            })
    }

    /// The best entry, unless the no-match rule says none answers.
    pub fn best(&self, text: &str, label_probs: &[(&str, f32)]) -> Option<FaqMatch> {
        self.best_normalized(&self.normalizer.normalize(text), label_probs)
    }

    /// [`best`](Self::best) for already-normalized text.
    pub fn best_normalized(
        &self,
        normalized: &str,
        label_probs: &[(&str, f32)],
    ) -> Option<FaqMatch> {
        self.lookup_normalized(normalized, label_probs, 1)
            .into_best()
    }

    /// The normalizer queries go through.
    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }
}

/// The best entries for a message and whether any of them answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaqLookup {
    /// The best entries, best first, whatever their score.
    pub matches: Vec<FaqMatch>,
    /// The no-match rule's probability that no entry answers the message.
    pub no_match_probability: f32,
    /// Whether that probability reached the rule's cut.
    pub no_match: bool,
}

impl FaqLookup {
    /// The best entry, unless no entry answers.
    pub fn into_best(self) -> Option<FaqMatch> {
        if self.no_match {
            None
        } else {
            self.matches.into_iter().next()
        }
    }
}

/// The FAQ's features: words and character 4-grams, no bigrams or
/// subwords, every feature any phrasing has.
fn faq_features() -> FeatureConfig {
    FeatureConfig {
        words: true,
        // Off: with bigrams the FAQ test set scored top-1 0.878 and
        // no-match recall 0.646, without them 0.881 and 0.708 (same
        // precision), and queries ran 30% faster. A paraphrase rarely
        // keeps the phrasing's word pairs.
        bigrams: false,
        subwords: false,
        char_ngrams: true,
        // 4-grams alone. Against 3–5 and 4–5 (calibration set, 300
        // answerable messages, top-1 / MRR: 3–4 0.857 / 0.917, 3–5
        // 0.840 / 0.906, 4–5 0.847 / 0.909) 3–4 won while every query
        // feature was looked up; once only the heaviest are (see
        // `QUERY_FEATURES`), 4-grams and words give the same top-1 and
        // no-match AUC with far fewer features. A 3-gram was kept for the
        // three-letter Arabic root, but the root's 4-grams with a prefix or
        // suffix letter ("اعتر", "عترا") carry most of it.
        char_min: 4,
        char_max: 4,
        min_df: 1,
        max_features: usize::MAX,
        transliterate: false,
        arabizi_scheme: crate::tokenize::ARABIZI_SCHEME,
    }
}

/// Whether a featurizer with settings `base` extracts every feature the
/// FAQ's settings `faq` do (more is fine: the FAQ gives the rest weight 0)
/// and transliterates Arabizi, as FAQ queries need.
fn covers(base: &FeatureConfig, faq: &FeatureConfig) -> bool {
    base.transliterate
        && (base.words || !faq.words)
        && (base.bigrams || !faq.bigrams)
        && (!faq.char_ngrams
            || (base.char_ngrams && base.char_min <= faq.char_min && base.char_max >= faq.char_max))
}

/// `base` extended with the FAQ's features it lacks, numbered after its
/// own; the FAQ's idf of every feature of the result (0 for `base`'s
/// features that no phrasing has) and its position in `faq`. Ids below `base.dim()` keep their
/// meaning, so one count of a message serves the classifier and the FAQ.
fn joint_featurizer(
    base: &Featurizer,
    faq: Vocabulary,
) -> Result<(Featurizer, Vec<f32>, Vec<u32>)> {
    let mut vocab = base.vocabulary();
    let mut weights = vec![0.0; vocab.names.len()];
    let mut rank = vec![u32::MAX; vocab.names.len()];
    let known: FxHashMap<&str, usize> = vocab
        .names
        .iter()
        .enumerate()
        .map(|(j, n)| (n.as_str(), j))
        .collect();
    let mut extra = Vec::new();
    for (i, (name, idf)) in faq.names.into_iter().zip(faq.idf).enumerate() {
        match known.get(name.as_str()) {
            Some(&j) => {
                weights[j] = idf;
                rank[j] = i as u32;
            }
            None => extra.push((name, idf, i as u32)),
        }
    }
    for (name, idf, i) in extra {
        vocab.names.push(name);
        vocab.idf.push(idf);
        weights.push(idf);
        rank.push(i);
    }
    Ok((base.with_vocabulary(vocab)?, weights, rank))
}

/// Counted features scaled to unit length: what the no-match rule's text
/// weights read.
fn unit(tf: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let norm = no_match::length(tf);
    tf.iter().map(|&(j, t)| (j, t / norm)).collect()
}

/// tf × the FAQ's idf of each counted feature, L2-normalized, into `out`
/// (cleared first); features the FAQ does not have are dropped. Returns
/// the squared length before normalizing: how much the message says in
/// the FAQ's terms.
fn weigh(tf: &[(u32, f32)], weights: &[f32], out: &mut SparseVec) -> f32 {
    out.clear();
    let mut norm = 0.0f32;
    for &(j, t) in tf {
        let w = weights.get(j as usize).copied().unwrap_or(0.0);
        if w > 0.0 {
            let v = t * w;
            norm += v * v;
            out.push((j, v));
        }
    }
    let length = norm.sqrt();
    if length > 0.0 {
        for (_, v) in out.iter_mut() {
            *v /= length;
        }
    }
    norm
}

/// Uncovered weight every message is assumed to carry on top of its own,
/// in squared tf-idf (on the calibration messages, a median of 950 for
/// three to six words, 1,500 for seven to twelve, 2,900 for 13 to 25): the
/// coverage of the best entry, a share of the message's weight, is shrunk
/// towards 0 for messages that say little.
///
/// Why: without it a one-word message ("ok", "hi", "مرحبا") was fully
/// covered by any entry with that word, and the FAQ alone answered it with
/// no-match probabilities of 0.01-0.02. Chosen by out-of-fold AUC on the
/// 2,270 calibration messages: 0 0.9311, 100 0.9325, 300 0.9335, 500
/// 0.9336, 1,000 0.9330. With 300 the FAQ alone refuses "hi", "ok",
/// "hello", "مرحبا" and "👍", and still answers "thanks" and "شكرا".
const COVER_PRIOR: f32 = 300.0;

/// Squared tf-idf of a feature every message is assumed to miss from
/// every entry: the least its gap (see `FaqIndex::reach`) can be. A message
/// of one or two words misses nothing from the entry that has its words,
/// so without a floor "hi" and "ok" looked fully answered again (no-match
/// probabilities 0.26-0.61 with the FAQ alone). Out-of-fold AUC on the
/// calibration messages: 0 0.9368, 10 0.9370, 30 0.9371, 100 0.9368, 300
/// 0.9360; at 30 and above the FAQ alone also refused "thanks" and
/// "شكرا", which its thanks entries answer, so 10.
const GAP_PRIOR: f32 = 10.0;

/// How many of a query's features are looked up (the heaviest by tf-idf),
/// and how many postings each feature keeps in its phrasing and centroid
/// lists (the heaviest). A query was bound by memory: about four cache
/// misses per feature, on spans and posting lists megabytes long. Chosen
/// with the FAQ's features (below) on the calibration set (out-of-fold
/// no-match AUC, top-1 and MRR of its 300 answerable messages), then timed
/// with `respond` on the corpus test split:
///
/// | n-grams | features | phrasing / centroid postings | AUC | top-1 | MRR | respond |
/// |---|---:|---|---:|---:|---:|---:|
/// | 3–4 | 160 | 32 / 32 | 0.895 | 0.857 | 0.916 | 22–29k/s |
/// | 3–4 | 112 | 16 / 32 | 0.910 | 0.857 | — | 23–34k/s |
/// | 4 | 112 | 16 / 32 | 0.904 | 0.850 | — | 35–42k/s |
/// | 4 | 80 | 16 / 32 | 0.901 | 0.850 | 0.911 | 42–48k/s |
/// | **4** | **64** | **16 / 32** | **0.905** | **0.860** | **0.914** | |
/// | 4 | 48 | 16 / 32 | 0.896 | 0.833 | 0.899 | |
/// | 4 | 64 | 12 / 32 | 0.899 | 0.853 | 0.910 | |
/// | 4 | 64 | 16 / 24 | 0.905 | 0.857 | 0.912 | |
/// | 3–4 | 64 | 16 / 32 | 0.881 | 0.820 | 0.882 | |
///
/// 64 features of 4-grams and words keep what 160 of 3–4-grams gave, at
/// about a third of the lookups; fewer than that starts to lose entries.
/// The rule's text score then still read only the looked-up features, and
/// the FAQ alone rejected 57% of `out_of_scope.jsonl` (69% before); it
/// now reads the whole message (a cheap dot product), which brought that
/// back to 65% at AUC 0.905, top-1 0.860, MRR 0.914.
///
/// Re-checked with 3,858 calibration messages (1,858 answerable) and the
/// rules of today, timing the FAQ alone over 5,000 entries (`faq` bench's
/// corpus, alternating runs of two binaries):
///
/// | features | centroid postings | calibration top-1 | test top-1 | no-match AUC | 5,000 entries |
/// |---:|---:|---:|---:|---:|---:|
/// | 64 | 32 | 0.8428 | 0.9421 | 0.9415 | 1× |
/// | **64** | **24** | **0.8412** | **0.9451** | **0.9415** | **1.04–1.08×** |
/// | 56 | 24 | 0.8294 | 0.9421 | — | 1.10–1.19× |
///
/// Three calibration messages and one test message apart, 24 centroid
/// postings are as good and faster; 56 features lose 1.2 points.
///
/// Once only the heaviest 40 features read phrasing lists
/// ([`PHRASING_FEATURES`]), more features and shorter centroid lists won
/// on the same calibration set (top-1 and MRR with the rule learned from
/// the FAQ's phrasings, out-of-fold AUC of the shipped rule):
///
/// | features | centroid postings | calibration top-1 | MRR | no-match AUC |
/// |---:|---:|---:|---:|---:|
/// | 64 | 24 | 0.8525 | 0.9053 | 0.9469 |
/// | 64 | 16 | 0.8509 | 0.9045 | 0.9473 |
/// | 80 | 24 | 0.8611 | 0.9134 | 0.9495 |
/// | 80 | 16 | 0.8601 | 0.9132 | 0.9499 |
/// | 80 | 12 | 0.8584 | 0.9123 | 0.9504 |
/// | 96 | 24 | 0.8660 | 0.9171 | 0.9505 |
/// | **96** | **16** | **0.8638** | **0.9160** | **0.9508** |
/// | 96 | 12 | 0.8649 | 0.9167 | 0.9511 |
///
/// The centroid's cap hardly matters between 12 and 24, and the extra
/// features pay for themselves: over 5,000 entries, 96 features with 16
/// centroid postings ran within the VM's noise of 64 with 24 (three
/// rounds of alternating runs: +1%, −5%, +1%; 44–55k queries/s). 12 and 16 are
/// two calibration messages apart; 16 was kept as it drops less of a
/// common feature's list in a large FAQ. (On the FAQ test set, which did
/// not choose, 16 refuses one answerable message fewer than 12.) With
/// the 4,012-message calibration set of today, 64 / 24 against 96 / 16:
/// top-1 0.8549 / 0.8658, MRR 0.9070 / 0.9173, AUC 0.9486 / 0.9522.
const QUERY_FEATURES: usize = 96;
/// How many of the looked-up features (the heaviest) are also looked up in
/// the phrasing lists; the others only reach the entries' centroids.
///
/// A phrasing's score is one cosine, and the best phrasing counts, so a
/// light feature (a common n-gram) that a few phrasings happen to share
/// mostly adds noise to which phrasing wins; in the centroid it is one
/// small weight among many. Chosen on the calibration set (3,858
/// messages, 1,858 answerable; top-1 and MRR with the rule learned from
/// the FAQ's phrasings, out-of-fold AUC with the shipped rule), then timed
/// over 5,000 entries (`fq5k`, alternating runs):
///
/// | phrasing features | calibration top-1 | MRR | no-match AUC | 5,000 entries |
/// |---:|---:|---:|---:|---:|
/// | 24 | 0.8509 | 0.9032 | 0.9472 | |
/// | 32 | 0.8450 | 0.9010 | 0.9468 | |
/// | **40** | **0.8525** | **0.9053** | **0.9469** | **1.05–1.12×** |
/// | 48 | 0.8461 | 0.9028 | 0.9469 | |
/// | 64 (all) | 0.8423 | 0.8998 | 0.9472 | 1× |
///
/// (measured with 64 looked-up features and 24 centroid postings). Reading
/// only 40 centroid lists too lost 6 points of top-1 (0.7917): the
/// centroids need every feature, and more of them than 64 (see
/// [`QUERY_FEATURES`]).
const PHRASING_FEATURES: usize = 40;
/// See [`QUERY_FEATURES`]. Small FAQs never reach these caps; with
/// thousands of entries they bound the work of a common feature.
const MAX_PHRASING_POSTINGS: usize = 16;
/// See [`QUERY_FEATURES`]. Of the shipped FAQ's 10,749 words, 125 are in
/// more than 24 of its 95 entries ("the", "my", "كيف", "wain", "3ala"):
/// for those only the entries where they weigh most are reached.
const MAX_CENTROID_POSTINGS: usize = 16;
/// Words of the phrasings whose features an FAQ counting on its own
/// precomputes (the most frequent first).
const CACHED_WORDS: usize = 20_000;

/// The entries of an FAQ file, with bad lines reported by number.
fn read_entries(path: &Path) -> Result<Vec<FaqEntry>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e: FaqEntry = serde_json::from_str(line).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            reason: format!("column {}: {e}", e.column()),
        })?;
        if e.questions.is_empty() {
            return Err(Error::Data {
                path: path.to_path_buf(),
                line: i as u64 + 1,
                reason: format!("entry `{}` has no questions", e.id),
            });
        }
        entries.push(e);
    }
    Ok(entries)
}

/// How many features ahead `FaqIndex::score` prefetches posting lists.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to start loading `postings[from..to]` (at most its first
/// eight cache lines, two full lists) into cache. A hint only: it changes no value, and on
/// targets without a prefetch instruction it does nothing.
#[inline(always)]
fn prefetch(postings: &[u32], from: usize, to: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // 16 postings per 64-byte line.
        let mut at = from;
        let end = to.min(postings.len()).min(from + 128);
        while at < end {
            let p = postings[at..].as_ptr().cast::<i8>();
            // SAFETY: `p` points into `postings` (at < len), and a prefetch
            // never faults or writes; SSE is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
            at += 16;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (postings, from, to);
}

/// Bits of a packed posting that hold the weight; the rest hold the id.
const WEIGHT_BITS: u32 = 12;
const WEIGHT_MAX: f32 = ((1u32 << WEIGHT_BITS) - 1) as f32;
/// Most phrasings (and so entries) one index can number in a posting.
const MAX_PHRASINGS: usize = 1 << (32 - WEIGHT_BITS);

/// A posting in 4 bytes: the id in the high 20 bits, the weight (a
/// component of a unit vector, so in 0..=1) rounded to a step of 1/4095 in
/// the low 12. A query's 96 looked-up features move a cosine by at most
/// 96 / 8190 ≈ 0.012 through rounding, and in practice by far less, as
/// the errors cancel; `faq-eval` gave the same answers either way (with
/// 64 features, when this was measured).
fn pack(id: u32, weight: f32) -> u32 {
    debug_assert!((id as usize) < MAX_PHRASINGS);
    let w = (weight.clamp(0.0, 1.0) * WEIGHT_MAX).round() as u32;
    (id << WEIGHT_BITS) | w
}

/// The id and weight of a packed posting.
#[inline(always)]
fn unpack(p: u32) -> (u32, f32) {
    (
        p >> WEIGHT_BITS,
        (p & ((1 << WEIGHT_BITS) - 1)) as f32 * (1.0 / WEIGHT_MAX),
    )
}

/// Keeps the `max_postings` heaviest postings of each feature, in id order.
fn cap_postings(postings: &mut [Vec<(u32, f32)>], max_postings: usize) {
    for list in postings {
        if list.len() > max_postings {
            list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            list.truncate(max_postings);
            list.sort_by_key(|&(id, _)| id);
        }
        list.shrink_to_fit();
    }
}

/// Per-thread accumulators for `FaqIndex::score`, kept between queries so a
/// query with thousands of entries allocates and zeroes nothing but what it
/// touched.
#[derive(Default)]
struct Scratch {
    /// The query's features, reused between queries.
    query: Vec<(u32, f32)>,
    /// Per phrasing: its dot product with the query.
    phrase: Vec<f32>,
    /// Per entry, together so one posting touches one cache line.
    acc: Vec<EntryScore>,
    touched: Vec<u32>,
    entries: Vec<u32>,
    /// Per query feature: where its phrasing list starts, where its
    /// centroid list starts and ends, and the feature's query weight.
    ranges: Vec<(u32, u32, u32, f32)>,
}

/// What a query has gathered for one entry.
#[derive(Debug, Clone, Copy, Default)]
struct EntryScore {
    /// Best phrasing's dot product.
    best: f32,
    /// Centroid's dot product.
    centroid: f32,
    /// Whether the entry is in `Scratch::entries` yet.
    seen: bool,
}

impl Scratch {
    fn fit(&mut self, phrasings: usize, entries: usize) {
        if self.phrase.len() < phrasings {
            self.phrase.resize(phrasings, 0.0);
        }
        if self.acc.len() < entries {
            self.acc.resize(entries, EntryScore::default());
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[cfg(test)]
mod tests {
    use super::no_match::best_cut;
    use super::*;

    fn entry(id: &str, label: &str, qs: &[&str]) -> FaqEntry {
        FaqEntry {
            id: id.into(),
            label: label.into(),
            questions: qs.iter().map(|s| s.to_string()).collect(),
            answer: Bilingual {
                ar: "جواب".into(),
                en: "answer".into(),
            },
        }
    }

    fn index() -> FaqIndex {
        FaqIndex::new(
            vec![
                entry(
                    "traffic.pay_fine",
                    "traffic",
                    &["كيف ادفع المخالفه", "how do i pay my traffic fine"],
                ),
                entry(
                    "traffic.object_fine",
                    "traffic",
                    &["ابي اعترض على مخالفه", "how to object to a fine"],
                ),
                entry(
                    "general.id_renew",
                    "general_inquiry",
                    &["كيف اجدد الهويه", "renew emirates id"],
                ),
            ],
            &Normalizer::default(),
        )
        .unwrap()
    }

    #[test]
    fn packed_postings_keep_ids_and_weights() {
        for &id in &[0u32, 1, 4095, 65_536, (MAX_PHRASINGS - 1) as u32] {
            for &w in &[0.0f32, 1e-5, 0.013, 0.5, 0.999_9, 1.0] {
                let (got_id, got_w) = unpack(pack(id, w));
                assert_eq!(got_id, id);
                assert!(
                    (got_w - w).abs() <= 0.5 / WEIGHT_MAX + 1e-7,
                    "{w} -> {got_w}"
                );
            }
        }
        // Out-of-range weights are clamped, never spilled into the id.
        assert_eq!(unpack(pack(7, 1.5)), (7, 1.0));
        assert_eq!(unpack(pack(7, -0.2)).0, 7);
    }

    #[test]
    fn finds_the_right_neighbour() {
        let idx = index();
        assert_eq!(
            idx.search("I want to pay the fine", &[], 1)[0].id,
            "traffic.pay_fine"
        );
        assert_eq!(
            idx.search("اعتراض على المخالفة لو سمحت", &[], 1)[0].id,
            "traffic.object_fine"
        );
        assert_eq!(idx.search("تجديد الهوية", &[], 1)[0].id, "general.id_renew");
    }

    #[test]
    fn nothing_close_gives_none() {
        let idx = index();
        assert!(idx.best("🙂", &[]).is_none());
        assert!(idx.best("", &[]).is_none());
        assert!(idx.best("football match tonight", &[]).is_none());
    }

    #[test]
    fn label_bonus_breaks_ties_but_not_clear_wins() {
        let idx = index();
        let m = idx.search("renew emirates id", &[("traffic", 1.0)], 1);
        assert_eq!(m[0].id, "general.id_renew");
    }

    #[test]
    fn arabizi_reaches_arabic_phrasings() {
        assert_eq!(
            arabizi_to_arabic("3ndi mo5alfa").as_deref(),
            Some("عندي مخلفا")
        );
        assert!(arabizi_to_arabic("hello world").is_none());
    }

    #[test]
    fn auc_counts_pairs_ranked_right() {
        use super::no_match::auc;
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]), 1.0);
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]), 0.0);
        // One of four pairs ranked wrong.
        assert_eq!(
            auc(&[0.9, 0.3, 0.5, 0.1], &[true, true, false, false]),
            0.75
        );
        assert_eq!(auc(&[0.5, 0.5], &[true, false]), 0.5);
        assert_eq!(auc(&[0.5, 0.4], &[true, true]), 0.5);
    }

    #[test]
    fn best_cut_separates_and_weighs_precision() {
        // Perfectly separable: the cut falls at the lowest unanswerable.
        let probs = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
        let none = [true, true, true, false, false, false];
        let (t, p, r) = best_cut(&probs, &none, 0.25);
        assert_eq!(t, 0.7);
        assert!((p - 1.0).abs() < 1e-5 && (r - 1.0).abs() < 1e-5, "{p} {r}");
        // An answerable message among the unanswerable ones: F½ gives up
        // a quarter of the recall rather than let precision fall.
        let probs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.2, 0.1];
        let none = [true, true, true, false, true, false, false];
        let (t, p, r) = best_cut(&probs, &none, 0.25);
        assert_eq!(t, 0.7);
        assert!((p - 1.0).abs() < 1e-5 && (r - 0.75).abs() < 1e-5, "{p} {r}");
    }

    #[test]
    fn no_match_rule_is_learned_from_the_shipped_faq() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/faq.jsonl");
        let idx = FaqIndex::load(path, &Normalizer::default()).unwrap();
        let rule = idx.no_match_rule();
        assert!(rule.precision.is_some() && rule.recall.is_some());
        assert!(rule.threshold > 0.0 && rule.threshold < 1.0);
        // More similarity must never make "no match" more likely.
        assert!(rule.weights[0] + rule.weights[1] * PHRASE_WEIGHT < 0.0);
        let found = idx.lookup("how can I pay my traffic fine online?", &[], 3);
        assert!(!found.no_match, "{found:?}");
        assert_eq!(found.matches.len(), 3);
        assert!(
            idx.best("what time does the football match start tonight", &[])
                .is_none()
        );
        assert!(idx.lookup("", &[], 3).no_match);
        // The learned cut can be overridden.
        let idx = idx.with_threshold(1.01);
        assert!(
            idx.best("what time does the football match start tonight", &[])
                .is_some()
        );
    }

    fn shipped_calibrated() -> FaqIndex {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        FaqIndex::load(root.join("data/faq.jsonl"), &Normalizer::default())
            .unwrap()
            .calibrate_from(root.join("data/faq_calibration.jsonl"))
            .unwrap()
    }

    #[test]
    fn one_word_chatter_gets_no_answer_but_thanks_does() {
        // Without `COVER_PRIOR` and `GAP_PRIOR` most of these got an entry
        // with a no-match probability of 0.02 or less.
        let index = shipped_calibrated();
        for chatter in ["hi", "hello", "ok", "no", "test", "مرحبا", "👍"] {
            let l = index.lookup(chatter, &[], 1);
            assert!(
                l.no_match,
                "{chatter:?} answered by {:?} (no-match {:.2})",
                l.matches.first().map(|m| &m.id),
                l.no_match_probability
            );
        }
        for thanks in ["thanks", "شكرا"] {
            let l = index.lookup(thanks, &[], 1);
            assert!(!l.no_match, "{thanks:?} refused");
            assert!(
                l.matches[0].label == "thanks",
                "{thanks:?}: {:?}",
                l.matches
            );
        }
    }

    #[test]
    fn load_for_extends_the_classifiers_ids() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let clf = crate::Classifier::load(root.join("models/mujib.model")).unwrap();
        let base = clf.featurizer();
        let faq = root.join("data/faq.jsonl");
        let cases = root.join("data/faq_calibration.jsonl");
        let shared = FaqIndex::load_for(&faq, &clf, Some(&cases)).unwrap();
        assert!(shared.counts_like(base));
        assert!(shared.featurizer.dim() > base.dim());
        for j in (0..base.dim() as u32).step_by(97) {
            assert_eq!(shared.featurizer.name(j), base.name(j));
        }
        // The classifier's subword features are no FAQ feature.
        let subword = (0..base.dim() as u32).find(|&j| base.name(j).starts_with("s:"));
        assert_eq!(subword.map(|j| shared.weights[j as usize]), Some(0.0));
        let own = FaqIndex::load(&faq, clf.normalizer()).unwrap();
        assert!(!own.counts_like(base));
        // A classifier without 4-grams cannot count for the FAQ.
        let narrow = FeatureConfig {
            char_max: 3,
            ..base.config().clone()
        };
        assert!(!covers(&narrow, &faq_features()));
        assert!(covers(base.config(), &faq_features()));
    }

    #[test]
    fn calibration_learns_the_rule_from_hand_written_cases() {
        let idx = shipped_calibrated();
        let rule = idx.no_match_rule();
        assert!(rule.calibration_messages.is_some_and(|n| n >= 250));
        assert!(rule.precision.is_some() && rule.threshold > 0.0 && rule.threshold < 1.0);
        assert!(rule.text_weights.iter().any(|&w| w != 0.0));
        assert!(
            !idx.lookup("how can I pay my traffic fine online?", &[], 1)
                .no_match
        );
        assert!(!idx.lookup("كيف أجدد الهوية الإماراتية؟", &[], 1).no_match);
        assert!(
            idx.best("what time does the football match start tonight", &[])
                .is_none()
        );
        assert!(idx.lookup("", &[], 1).no_match);
        // The same evidence with more similarity is never less answerable.
        let e = Evidence {
            similarity: 0.2,
            phrase: 0.2,
            centroid: 0.2,
            runner_up: 0.1,
            coverage: 0.5,
            text: 0.0,
            gap: 0.3,
        };
        let closer = Evidence {
            similarity: 0.5,
            phrase: 0.5,
            centroid: 0.5,
            ..e
        };
        assert!(rule.probability(Some(&closer)) <= rule.probability(Some(&e)));
        let covered = Evidence { coverage: 0.9, ..e };
        assert!(rule.probability(Some(&covered)) < rule.probability(Some(&e)));
        // A heavier word missing from the entry never makes it more
        // answerable.
        let wider = Evidence { gap: 0.6, ..e };
        assert!(rule.probability(Some(&wider)) >= rule.probability(Some(&e)));
        assert!(rule.weights.iter().all(|&w| w <= 0.0), "{:?}", rule.weights);
    }

    #[test]
    fn calibration_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let idx = index();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let unknown = write(
            "unknown.jsonl",
            "{\"text\": \"pay fine\", \"expected\": \"traffic.pay_fine\"}\n\n{\"text\": \"x\", \"expected\": \"no.such\"}\n",
        );
        let err = idx
            .clone()
            .calibrate_from(&unknown)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown.jsonl") && err.contains(":3") && err.contains("no.such"),
            "{err}"
        );
        let broken = write(
            "broken.jsonl",
            "{\"text\": \"a\", \"expected\": null}\n{\"text\": 5}\n",
        );
        let err = idx.clone().calibrate_from(&broken).unwrap_err().to_string();
        assert!(err.contains(":2") && err.contains("column"), "{err}");
        let empty = write("empty.jsonl", "{\"text\": \"  \", \"expected\": null}\n");
        let err = idx.clone().calibrate_from(&empty).unwrap_err().to_string();
        assert!(err.contains(":1") && err.contains("empty"), "{err}");
        // One class only: nothing to learn a decision from.
        let one = write(
            "one.jsonl",
            "{\"text\": \"pay fine\", \"expected\": \"traffic.pay_fine\"}\n",
        );
        assert!(idx.calibrate_from(&one).is_err());
    }

    #[test]
    fn small_faqs_use_the_fallback_rule() {
        let idx = index();
        assert_eq!(idx.no_match_rule(), &NoMatchRule::fallback());
    }

    #[test]
    fn rejects_duplicates_and_empty() {
        let n = Normalizer::default();
        assert!(FaqIndex::new(vec![], &n).is_err());
        let e = entry("a", "traffic", &["x"]);
        assert!(FaqIndex::new(vec![e.clone(), e], &n).is_err());
    }
}

/// How well FAQ matching does on a test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaqReport {
    /// Cut on the no-match probability used for the decision.
    pub threshold: f32,
    /// Queries with an expected entry.
    pub answerable: usize,
    /// Queries that no entry answers.
    pub unanswerable: usize,
    /// Share of answerable queries whose best-scoring entry is the expected one.
    pub top1_accuracy: f64,
    /// Share of answerable queries answered with the expected entry (best
    /// entry correct *and* above the threshold): what users actually get.
    pub answered_correctly: f64,
    /// Mean reciprocal rank of the expected entry among the top 10.
    pub mrr: f64,
    /// Of the queries given no match, the share that truly had none.
    pub no_match_precision: f64,
    /// Of the queries that truly had no match, the share given none.
    pub no_match_recall: f64,
}

impl FaqReport {
    /// Human-readable summary.
    pub fn to_text(&self) -> String {
        format!(
            "answerable={} unanswerable={} threshold={:.2}\ntop-1 accuracy={:.4}  answered correctly={:.4}  MRR={:.4}\nno-match precision={:.4}  recall={:.4}",
            self.answerable,
            self.unanswerable,
            self.threshold,
            self.top1_accuracy,
            self.answered_correctly,
            self.mrr,
            self.no_match_precision,
            self.no_match_recall
        )
    }
}

/// Scores lookups against expected ids; a lookup counts as "no match"
/// when its no-match probability is at least `threshold`.
pub fn faq_report(cases: &[(Option<String>, FaqLookup)], threshold: f32) -> FaqReport {
    let (mut answerable, mut unanswerable, mut top1, mut answered, mut rr) =
        (0usize, 0usize, 0usize, 0usize, 0.0f64);
    let (mut none_pred, mut none_true_pred) = (0usize, 0usize);
    for (expected, found) in cases {
        let matches = &found.matches;
        let no_match = matches.is_empty() || found.no_match_probability >= threshold;
        if no_match {
            none_pred += 1;
        }
        match expected {
            Some(id) => {
                answerable += 1;
                if let Some(rank) = matches.iter().position(|m| &m.id == id) {
                    rr += 1.0 / (rank as f64 + 1.0);
                    if rank == 0 {
                        top1 += 1;
                        if !no_match {
                            answered += 1;
                        }
                    }
                }
            }
            None => {
                unanswerable += 1;
                if no_match {
                    none_true_pred += 1;
                }
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    FaqReport {
        threshold,
        answerable,
        unanswerable,
        top1_accuracy: ratio(top1, answerable),
        answered_correctly: ratio(answered, answerable),
        mrr: if answerable == 0 {
            0.0
        } else {
            rr / answerable as f64
        },
        no_match_precision: ratio(none_true_pred, none_pred),
        no_match_recall: ratio(none_true_pred, unanswerable),
    }
}
