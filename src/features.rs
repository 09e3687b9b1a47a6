//! Third stage: turns a normalized message into a sparse, tf-idf weighted,
//! L2-normalized vector over a fixed vocabulary of features.
//!
//! Four feature families, each switchable: word unigrams (`w:`), word
//! bigrams (`b:`), HF subword pieces (`s:`) and character n-grams inside
//! words (`c:`). Character n-grams are what make Arabizi and misspelled
//! Arabic work: `mo5alfa`/`mukhalfa` or `مخالفه`/`مخالفة` share most n-grams.
//!
//! Features are looked up by a 64-bit hash of their text, so the hot path
//! never allocates a string; per-word features of frequent words are
//! precomputed once at load time.

use std::hash::Hasher;
use std::sync::RwLock;

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tokenize::{ARABIZI_SCHEME, Tokenizer, arabizi_to_arabic_with, words};

/// Which feature families are extracted, and how many features are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Word unigrams.
    pub words: bool,
    /// Adjacent word pairs.
    pub bigrams: bool,
    /// Subword pieces from the trained HF tokenizer.
    pub subwords: bool,
    /// Character n-grams inside words (padded with a space at each end).
    pub char_ngrams: bool,
    /// Smallest character n-gram.
    pub char_min: usize,
    /// Largest character n-gram.
    pub char_max: usize,
    /// A feature must occur in at least this many training messages.
    pub min_df: u32,
    /// Keep at most this many features (the most label-informative by chi²).
    pub max_features: usize,
    /// Also extract the features of a rough Arabic-script transliteration
    /// of Arabizi words (`mo5alfa` → `مخالفا`), so the few Arabizi messages
    /// share features with the many Arabic ones. Off when absent from a
    /// saved config, so models trained before it keep their features.
    #[serde(default)]
    pub transliterate: bool,
    /// Which transliteration rules (see
    /// [`arabizi_to_arabic_with`](crate::tokenize::arabizi_to_arabic_with)).
    /// 1 when absent from a saved config: the rules models were trained
    /// with before there was a choice.
    #[serde(default = "first_arabizi_scheme")]
    pub arabizi_scheme: u8,
}

fn first_arabizi_scheme() -> u8 {
    1
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            words: true,
            // Off: 5-fold CV macro-F1 on the 5,660-message corpus was 0.9235
            // without word bigrams and 0.9218 with them (char 3–4 both), and
            // their lookups cost a fifth of prediction time. The subword
            // and n-gram features already span most word pairs' signal.
            bigrams: false,
            subwords: true,
            char_ngrams: true,
            // 3–4 rather than 2–5: on the 5,660-message corpus 5-fold CV
            // macro-F1 was 0.9218 for 3–4 against 0.9205 for 2–5 (2–4:
            // 0.9198, 3–5: 0.9205), and a message has about 40% fewer
            // features, which makes prediction a quarter faster.
            char_min: 3,
            char_max: 4,
            min_df: 2,
            max_features: 80_000,
            transliterate: true,
            arabizi_scheme: ARABIZI_SCHEME,
        }
    }
}

impl FeatureConfig {
    /// Checks the values once, so a bad config fails before training starts.
    pub fn check(&self) -> Result<()> {
        if !(self.words || self.bigrams || self.subwords || self.char_ngrams) {
            return Err(Error::param(
                "features",
                "at least one feature family must be on",
            ));
        }
        if self.char_ngrams
            && (self.char_min == 0 || self.char_min > self.char_max || self.char_max > 8)
        {
            return Err(Error::param(
                "char_min/char_max",
                "need 1 <= char_min <= char_max <= 8",
            ));
        }
        if self.max_features == 0 {
            return Err(Error::param("max_features", "must be positive"));
        }
        if !(1..=ARABIZI_SCHEME).contains(&self.arabizi_scheme) {
            return Err(Error::param(
                "arabizi_scheme",
                format!(
                    "{} is not a known scheme (1..={ARABIZI_SCHEME}); the model may need a newer mujib",
                    self.arabizi_scheme
                ),
            ));
        }
        Ok(())
    }
}

/// A sparse feature vector: `(feature index, value)` sorted by index.
pub type SparseVec = Vec<(u32, f32)>;

/// Feature family tags, also the prefix of a feature's readable name.
const WORD: u8 = b'w';
const BIGRAM: u8 = b'b';
const SUBWORD: u8 = b's';
const CHAR: u8 = b'c';

// Words longer than this are keyboard mash or glued text; their n-grams past
// this point add cost, not signal.
const MAX_NGRAM_CHARS: usize = 32;

/// Marks a subword piece that is not a feature.
const NONE: u32 = u32::MAX;

/// `1 + ln(tf)`, from a table for the counts that occur in short messages.
fn sublinear_tf(tf: usize) -> f32 {
    const TABLE: [f32; 8] = [
        0.0,
        1.0,
        1.693_147_2,
        2.098_612_3,
        2.386_294_4,
        2.609_438,
        2.791_759_5,
        2.945_910_1,
    ];
    TABLE
        .get(tf)
        .copied()
        .unwrap_or_else(|| 1.0 + (tf as f32).ln())
}

/// `feature_hash(family, &[s])` for a byte slice holding `s`.
fn byte_hash(family: u8, bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u8(family);
    h.write(bytes);
    h.write_u8(0xff);
    h.finish()
}

/// Sorts feature ids below `dim`. A message has a few hundred ids and the
/// comparison sort was a tenth of prediction time, so ids take a two-pass
/// LSD radix sort instead, with digits just wide enough for `dim` (9 bits
/// each for 80,000 features; up to 11 bits, so up to 4M features).
fn sort_ids(ids: &mut [u32], dim: usize) {
    let bits = usize::BITS - dim.saturating_sub(1).leading_zeros();
    if ids.len() < 48 || bits > 22 {
        ids.sort_unstable();
        return;
    }
    let digit = bits.div_ceil(2).max(1);
    let buckets = 1usize << digit;
    let mask = (buckets - 1) as u32;
    let mut tmp = vec![0u32; ids.len()];
    let mut counts = vec![0u32; 2 * buckets];
    let (low, high) = counts.split_at_mut(buckets);
    for &id in ids.iter() {
        low[(id & mask) as usize] += 1;
        high[((id >> digit) & mask) as usize] += 1;
    }
    for (pass, count) in [low, high].into_iter().enumerate() {
        let mut sum = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        let shift = digit * pass as u32;
        let (src, dst): (&[u32], &mut [u32]) = if pass == 0 {
            (ids, &mut tmp)
        } else {
            (&tmp, ids)
        };
        for &id in src {
            let b = ((id >> shift) & mask) as usize;
            dst[count[b] as usize] = id;
            count[b] += 1;
        }
    }
}

/// Key of a word in the per-word caches.
fn word_hash(word: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(word.as_bytes());
    h.finish()
}

fn feature_hash(family: u8, parts: &[&str]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u8(family);
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// Readable name of a feature, as shown in explanations.
fn feature_name(family: u8, parts: &[&str]) -> String {
    format!("{}:{}", family as char, parts.join(" "))
}

/// Calls `f` for every raw feature of one word (unigram, subwords, n-grams).
fn word_features(
    config: &FeatureConfig,
    tokenizer: Option<&Tokenizer>,
    word: &str,
    f: &mut dyn FnMut(u8, &[&str]),
) {
    if config.words {
        f(WORD, &[word]);
    }
    let placeholder = word.starts_with('<') && word.ends_with('>') && word.len() > 2;
    if placeholder {
        return;
    }
    if let (true, Some(tokenizer)) = (config.subwords, tokenizer) {
        for piece in tokenizer.word_pieces(word) {
            f(SUBWORD, &[&piece]);
        }
    }
    if config.char_ngrams {
        // Keep the first MAX_NGRAM_CHARS + 2 characters of " word ", so a
        // word of up to MAX_NGRAM_CHARS characters keeps both pads.
        let padded = format!(" {word} ");
        let mut bounds: Vec<usize> = padded
            .char_indices()
            .map(|(i, _)| i)
            .take(MAX_NGRAM_CHARS + 3)
            .collect();
        if bounds.len() < MAX_NGRAM_CHARS + 3 {
            bounds.push(padded.len());
        }
        let nchars = bounds.len() - 1;
        for n in config.char_min..=config.char_max {
            if n > nchars {
                break;
            }
            for start in 0..=(nchars - n) {
                f(CHAR, &[&padded[bounds[start]..bounds[start + n]]]);
            }
        }
    }
}

/// Calls `f` for every raw feature of a normalized text, with repeats,
/// including those of its Arabizi transliteration when configured.
pub(crate) fn raw_features(
    config: &FeatureConfig,
    tokenizer: Option<&Tokenizer>,
    normalized: &str,
    f: &mut dyn FnMut(u8, &[&str]),
) {
    text_features(config, tokenizer, normalized, f);
    if config.transliterate
        && let Some(t) = arabizi_to_arabic_with(normalized, config.arabizi_scheme)
    {
        text_features(config, tokenizer, &t, f);
    }
}

fn text_features(
    config: &FeatureConfig,
    tokenizer: Option<&Tokenizer>,
    normalized: &str,
    f: &mut dyn FnMut(u8, &[&str]),
) {
    let mut prev: Option<&str> = None;
    for w in words(normalized) {
        word_features(config, tokenizer, w, f);
        if let (true, Some(p)) = (config.bigrams, prev) {
            f(BIGRAM, &[p, w]);
        }
        prev = Some(w);
    }
}

/// The learned vocabulary: feature names and their inverse document frequency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Vocabulary {
    pub names: Vec<String>,
    pub idf: Vec<f32>,
}

impl Vocabulary {
    /// Feature ids by ascending idf (most frequent first), ties in id order.
    pub fn frequency_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.idf.len()).collect();
        order.sort_by(|&a, &b| self.idf[a].total_cmp(&self.idf[b]).then(a.cmp(&b)));
        order
    }

    /// The vocabulary with feature `order[new]` renumbered `new`; `order`
    /// is a permutation, so every name is moved out once, not copied.
    pub fn permuted(mut self, order: &[usize]) -> Vocabulary {
        Vocabulary {
            names: order
                .iter()
                .map(|&old| std::mem::take(&mut self.names[old]))
                .collect(),
            idf: order.iter().map(|&old| self.idf[old]).collect(),
        }
    }

    /// The same features numbered most frequent first.
    pub fn most_frequent_first(self) -> Vocabulary {
        let order = self.frequency_order();
        self.permuted(&order)
    }
}

/// Turns normalized text into sparse vectors. `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Featurizer {
    config: FeatureConfig,
    tokenizer: Option<Tokenizer>,
    names: Vec<String>,
    idf: Vec<f32>,
    index: FxHashMap<u64, u32>,
    /// Feature id of each subword vocabulary id (`NONE` when not selected),
    /// so the hot path never hashes a piece's text.
    subword_features: Vec<u32>,
    /// Precomputed features of frequent words: word hash → range in
    /// `cache_ids`. One flat arena instead of a heap block per word keeps
    /// the lookups in cache; the 64-bit hash is the key, as for features.
    cache: FxHashMap<u64, (u32, u32)>,
    cache_ids: Vec<u32>,
    cache_words: Vec<String>,
    seen: WordCache,
    /// Identifies what this featurizer computes (settings, feature names
    /// and subword mapping), so a consumer can check that ids it was built
    /// on mean the same features here.
    fingerprint: u64,
}

/// Features of words met at prediction time that are not in the
/// precomputed cache. Words repeat constantly in this traffic (names of
/// places, misspellings, Arabizi spellings), and computing a new word's
/// subwords and n-grams costs ten times a lookup. Sharded so threads rarely
/// meet on one lock; each shard is emptied when full, which bounds memory
/// (about 10 MB) without bookkeeping.
struct WordCache {
    shards: Box<[RwLock<Shard>]>,
}

/// Word hash → feature ids.
type Shard = FxHashMap<u64, Box<[u32]>>;

const CACHE_SHARDS: usize = 16;

/// Per-thread buffers for counting a message's features.
#[derive(Default)]
struct Scratch {
    /// Occurrences of each feature id in the current message; all zero
    /// between messages.
    counts: Vec<u16>,
    /// The ids with a non-zero count, in order of first occurrence.
    ids: Vec<u32>,
    tf: Vec<(u32, f32)>,
    /// Features of a word met for the first time.
    word: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}
const CACHE_SHARD_WORDS: usize = 4096;

impl WordCache {
    fn new() -> Self {
        WordCache {
            shards: (0..CACHE_SHARDS)
                .map(|_| RwLock::new(FxHashMap::default()))
                .collect(),
        }
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        &self.shards[(hash >> 40) as usize % CACHE_SHARDS]
    }

    /// Calls `visit` with the cached features of the word with this hash;
    /// false on a miss.
    fn visit(&self, hash: u64, visit: &mut impl FnMut(u32)) -> bool {
        // A poisoned lock only means another thread panicked mid-insert;
        // the map itself is still valid.
        let map = self.shard(hash).read().unwrap_or_else(|e| e.into_inner());
        match map.get(&hash) {
            Some(cached) => {
                cached.iter().for_each(|&id| visit(id));
                true
            }
            None => false,
        }
    }

    fn insert(&self, hash: u64, features: &[u32]) {
        // Never wait for a writer: a missed insert costs one recomputation.
        if let Ok(mut map) = self.shard(hash).try_write() {
            if map.len() >= CACHE_SHARD_WORDS {
                map.clear();
            }
            map.insert(hash, features.into());
        }
    }

    fn clear(&self) {
        for s in &self.shards {
            s.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

impl Clone for WordCache {
    fn clone(&self) -> Self {
        WordCache::new()
    }
}

impl std::fmt::Debug for WordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WordCache({} words)", self.len())
    }
}

impl Featurizer {
    /// Builds a featurizer from a vocabulary; `cache_words` are precomputed.
    pub(crate) fn new(
        config: FeatureConfig,
        tokenizer: Option<Tokenizer>,
        vocab: Vocabulary,
        cache_words: &[String],
    ) -> Result<Self> {
        if vocab.names.len() != vocab.idf.len() {
            return Err(Error::ModelCorrupt(format!(
                "{} feature names but {} idf values",
                vocab.names.len(),
                vocab.idf.len()
            )));
        }
        let mut index = FxHashMap::default();
        index.reserve(vocab.names.len());
        for (i, name) in vocab.names.iter().enumerate() {
            let (family, text) = split_name(name)
                .ok_or_else(|| Error::ModelCorrupt(format!("bad feature name {name:?}")))?;
            let hash = if family == BIGRAM {
                let (a, b) = text
                    .split_once(' ')
                    .ok_or_else(|| Error::ModelCorrupt(format!("bad bigram {name:?}")))?;
                feature_hash(family, &[a, b])
            } else {
                feature_hash(family, &[text])
            };
            index.insert(hash, i as u32);
        }
        let mut subword_features = Vec::new();
        if let Some(t) = &tokenizer {
            for (piece, id) in t.vocab() {
                let id = id as usize;
                if subword_features.len() <= id {
                    subword_features.resize(id + 1, NONE);
                }
                if let Some(&f) = index.get(&feature_hash(SUBWORD, &[&piece])) {
                    subword_features[id] = f;
                }
            }
        }
        let fingerprint = {
            let mut h = FxHasher::default();
            h.write(format!("{config:?}").as_bytes());
            for name in &vocab.names {
                h.write(name.as_bytes());
                h.write_u8(0);
            }
            for &id in &subword_features {
                h.write_u32(id);
            }
            h.finish()
        };
        let mut f = Featurizer {
            fingerprint,
            config,
            tokenizer,
            names: vocab.names,
            idf: vocab.idf,
            index,
            subword_features,
            cache: FxHashMap::default(),
            cache_ids: Vec::new(),
            cache_words: cache_words.to_vec(),
            seen: WordCache::new(),
        };
        let mut cache = FxHashMap::default();
        cache.reserve(cache_words.len());
        let mut arena = Vec::new();
        for w in cache_words {
            let start = arena.len();
            f.word_ids(w, &mut arena);
            cache.insert(word_hash(w), (start as u32, (arena.len() - start) as u32));
        }
        f.cache = cache;
        f.cache_ids = arena;
        Ok(f)
    }

    /// Feature ids of one word, computed from scratch: the same features as
    /// `word_features` names, but by hash only, with no allocation per
    /// n-gram or subword piece.
    fn word_ids(&self, word: &str, ids: &mut Vec<u32>) {
        let config = &self.config;
        if config.words
            && let Some(&id) = self.index.get(&feature_hash(WORD, &[word]))
        {
            ids.push(id);
        }
        if word.starts_with('<') && word.ends_with('>') && word.len() > 2 {
            return;
        }
        if let (true, Some(tokenizer)) = (config.subwords, &self.tokenizer) {
            let start = ids.len();
            tokenizer.word_piece_ids(word, ids);
            // Map vocabulary ids to feature ids in place, dropping pieces
            // the vocabulary selection did not keep.
            let mut keep = start;
            for i in start..ids.len() {
                let f = self
                    .subword_features
                    .get(ids[i] as usize)
                    .copied()
                    .unwrap_or(NONE);
                if f != NONE {
                    ids[keep] = f;
                    keep += 1;
                }
            }
            ids.truncate(keep);
        }
        if config.char_ngrams {
            // " word " in a stack buffer, cut as `word_features` cuts it.
            let mut buf = [0u8; 4 * MAX_NGRAM_CHARS + 8];
            let mut bounds = [0usize; MAX_NGRAM_CHARS + 3];
            let mut len = 0;
            let mut nb = 0;
            for c in std::iter::once(' ')
                .chain(word.chars())
                .chain(std::iter::once(' '))
            {
                if nb == MAX_NGRAM_CHARS + 2 {
                    break;
                }
                bounds[nb] = len;
                nb += 1;
                len += c.encode_utf8(&mut buf[len..]).len();
            }
            bounds[nb] = len;
            let nchars = nb;
            for n in config.char_min..=config.char_max {
                if n > nchars {
                    break;
                }
                for start in 0..=(nchars - n) {
                    let gram = &buf[bounds[start]..bounds[start + n]];
                    if let Some(&id) = self.index.get(&byte_hash(CHAR, gram)) {
                        ids.push(id);
                    }
                }
            }
        }
    }

    /// The feature vector of an already-normalized text: sublinear tf times
    /// idf, L2-normalized. Empty when no known feature occurs.
    pub fn featurize(&self, normalized: &str) -> SparseVec {
        let mut x = SparseVec::new();
        self.featurize_into(normalized, true, &mut x);
        x
    }

    /// [`featurize`](Self::featurize) into a caller's buffer (cleared
    /// first), in id order when `sorted`, else in order of first
    /// occurrence: the FAQ reuses one buffer per thread and needs no order.
    pub(crate) fn featurize_into(&self, normalized: &str, sorted: bool, out: &mut SparseVec) {
        out.clear();
        let mut norm = 0.0f32;
        self.with_term_frequencies(normalized, sorted, |tf| {
            out.extend(tf.iter().map(|&(id, t)| {
                let v = t * self.idf[id as usize];
                norm += v * v;
                (id, v)
            }));
        });
        let norm = norm.sqrt();
        if norm > 0.0 {
            for (_, v) in out.iter_mut() {
                *v /= norm;
            }
        }
    }

    /// The message's features with their sublinear term frequency only, in
    /// id order: [`featurize`](Self::featurize) before idf and length
    /// normalization. Tests compare the counting and sorting paths with it.
    #[cfg(test)]
    pub(crate) fn term_frequencies(&self, normalized: &str) -> SparseVec {
        self.with_term_frequencies(normalized, true, |tf| tf.to_vec())
    }

    /// Calls `f` with the message's features and their sublinear term
    /// frequency, in id order when `sorted`, else in order of first
    /// occurrence. The classifier applies idf and length normalization
    /// itself, in the same pass that reads the weights, and needs no order,
    /// so it skips the sort and the copy.
    ///
    /// Occurrences are counted in a per-thread table indexed by feature id
    /// (two bytes per feature), not by sorting the raw ids: a message has a
    /// few hundred ids with repeats, and sorting them and copying cached
    /// words' ids into one buffer was a third of prediction time.
    pub(crate) fn with_term_frequencies<R>(
        &self,
        normalized: &str,
        sorted: bool,
        f: impl FnOnce(&[(u32, f32)]) -> R,
    ) -> R {
        let transliterate = self.config.transliterate;
        self.with_term_frequencies_as(normalized, sorted, transliterate, f)
    }

    /// [`with_term_frequencies`](Self::with_term_frequencies), with the
    /// Arabizi transliteration on or off whatever the settings say: the FAQ
    /// counts its own phrasings as written but reads queries both ways.
    pub(crate) fn with_term_frequencies_as<R>(
        &self,
        normalized: &str,
        sorted: bool,
        transliterate: bool,
        f: impl FnOnce(&[(u32, f32)]) -> R,
    ) -> R {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.count_in(normalized, sorted, transliterate, &mut scratch, f),
            // Only when `f` itself featurizes on this thread: a fresh table.
            Err(_) => self.count_in(
                normalized,
                sorted,
                transliterate,
                &mut Scratch::default(),
                f,
            ),
        })
    }

    fn count_in<R>(
        &self,
        normalized: &str,
        sorted: bool,
        transliterate: bool,
        s: &mut Scratch,
        f: impl FnOnce(&[(u32, f32)]) -> R,
    ) -> R {
        let dim = self.names.len();
        if s.counts.len() < dim {
            s.counts.resize(dim, 0);
        }
        s.ids.clear();
        s.tf.clear();
        let Scratch {
            counts,
            ids,
            tf,
            word,
        } = s;
        let mut saturated = false;
        let mut visit = |id: u32| {
            // Ids come from this featurizer's index, so they are below dim.
            if let Some(c) = counts.get_mut(id as usize) {
                if *c == 0 {
                    ids.push(id);
                }
                if *c == u16::MAX {
                    saturated = true;
                } else {
                    *c += 1;
                }
            }
        };
        self.visit_ids(normalized, word, &mut visit);
        if transliterate
            && let Some(t) = arabizi_to_arabic_with(normalized, self.config.arabizi_scheme)
        {
            self.visit_ids(&t, word, &mut visit);
        }
        if sorted {
            sort_ids(ids, dim);
        }
        tf.reserve(ids.len());
        for &id in ids.iter() {
            let c = &mut counts[id as usize];
            tf.push((id, sublinear_tf(usize::from(*c))));
            *c = 0;
        }
        if saturated {
            // One feature occurred 65,535 times or more (a pasted book):
            // count that message exactly the slow way.
            return f(&self.term_frequencies_by_sorting(normalized, transliterate));
        }
        f(tf)
    }

    /// The sorted term frequencies of
    /// [`with_term_frequencies`](Self::with_term_frequencies), by sorting all
    /// raw ids, with no bound on counts; for messages whose repeats overflow
    /// the per-thread table.
    fn term_frequencies_by_sorting(&self, normalized: &str, transliterate: bool) -> SparseVec {
        let mut ids: Vec<u32> = Vec::new();
        let mut word = Vec::new();
        let mut push = |id| ids.push(id);
        self.visit_ids(normalized, &mut word, &mut push);
        if transliterate
            && let Some(t) = arabizi_to_arabic_with(normalized, self.config.arabizi_scheme)
        {
            self.visit_ids(&t, &mut word, &mut push);
        }
        sort_ids(&mut ids, self.names.len());
        let mut out: SparseVec = Vec::new();
        for run in ids.chunk_by(|a, b| a == b) {
            out.push((run[0], sublinear_tf(run.len())));
        }
        out
    }

    /// idf of feature `id` (0 for an unknown id).
    pub(crate) fn idf(&self, id: u32) -> f32 {
        self.idf.get(id as usize).copied().unwrap_or(0.0)
    }

    /// Calls `visit` with the feature id of every feature occurrence in one
    /// text (words, their features, bigrams), with repeats. `word` is a
    /// buffer for the features of a word met for the first time.
    fn visit_ids(&self, normalized: &str, word: &mut Vec<u32>, visit: &mut impl FnMut(u32)) {
        let mut prev: Option<&str> = None;
        for w in words(normalized) {
            let hash = word_hash(w);
            match self.cache.get(&hash) {
                Some(&(start, len)) => self.cache_ids[start as usize..(start + len) as usize]
                    .iter()
                    .for_each(|&id| visit(id)),
                None => {
                    if !self.seen.visit(hash, visit) {
                        word.clear();
                        self.word_ids(w, word);
                        self.seen.insert(hash, word);
                        word.iter().for_each(|&id| visit(id));
                    }
                }
            }
            if let (true, Some(p)) = (self.config.bigrams, prev)
                && let Some(&id) = self.index.get(&feature_hash(BIGRAM, &[p, w]))
            {
                visit(id);
            }
            prev = Some(w);
        }
    }

    /// Forgets the words met since loading (the precomputed frequent words
    /// stay). Only useful to measure the cost of unseen words.
    pub fn clear_word_cache(&self) {
        self.seen.clear();
    }

    /// Readable name of feature `id` (`w:word`, `c: مخ`, `b:a b`, `s:##ه`).
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", String::as_str)
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.names.len()
    }

    /// The feature settings.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The subword tokenizer, if subword features are used.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// The words whose features are precomputed, in training-frequency order.
    pub(crate) fn cached_words(&self) -> Vec<String> {
        self.cache_words.clone()
    }

    /// The same featurizer (settings, tokenizer, cached words) over
    /// another vocabulary, e.g. the same features renumbered.
    pub(crate) fn with_vocabulary(&self, vocab: Vocabulary) -> Result<Featurizer> {
        Featurizer::new(
            self.config.clone(),
            self.tokenizer.clone(),
            vocab,
            &self.cache_words,
        )
    }

    /// Identifies the settings, feature names and subword mapping: two
    /// featurizers with the same fingerprint give every text the same ids.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub(crate) fn vocabulary(&self) -> Vocabulary {
        Vocabulary {
            names: self.names.clone(),
            idf: self.idf.clone(),
        }
    }
}

fn split_name(name: &str) -> Option<(u8, &str)> {
    let (fam, text) = name.split_once(':')?;
    let fam = match fam {
        "w" => WORD,
        "b" => BIGRAM,
        "s" => SUBWORD,
        "c" => CHAR,
        _ => return None,
    };
    Some((fam, text))
}

/// Selects the vocabulary from training texts: features in at least
/// `min_df` messages, ranked by their chi² association with any label.
pub(crate) fn select_vocabulary(
    config: &FeatureConfig,
    tokenizer: Option<&Tokenizer>,
    normalized: &[String],
    labels: &[usize],
    n_labels: usize,
) -> Vocabulary {
    struct Stat {
        name: String,
        df: u32,
        class_df: Vec<u32>,
    }
    let mut stats: FxHashMap<u64, Stat> = FxHashMap::default();
    let mut class_n = vec![0u32; n_labels];
    let mut seen: Vec<u64> = Vec::new();
    for (text, &y) in normalized.iter().zip(labels) {
        class_n[y] += 1;
        seen.clear();
        raw_features(config, tokenizer, text, &mut |fam, parts| {
            let h = feature_hash(fam, parts);
            if !seen.contains(&h) {
                seen.push(h);
                let s = stats.entry(h).or_insert_with(|| Stat {
                    name: feature_name(fam, parts),
                    df: 0,
                    class_df: vec![0; n_labels],
                });
                s.df += 1;
                s.class_df[y] += 1;
            }
        });
    }
    let n = normalized.len() as f64;
    let mut ranked: Vec<(f64, &Stat)> = stats
        .values()
        .filter(|s| s.df >= config.min_df)
        .map(|s| {
            // chi² of the 2x2 table (feature present?, label == c), max over c.
            let df = f64::from(s.df);
            let score = (0..n_labels)
                .map(|c| {
                    let a = f64::from(s.class_df[c]);
                    let b = df - a;
                    let cn = f64::from(class_n[c]);
                    let cc = cn - a;
                    let d = n - a - b - cc;
                    let den = (a + b) * (cc + d) * (a + cc) * (b + d);
                    if den <= 0.0 {
                        0.0
                    } else {
                        n * (a * d - b * cc).powi(2) / den
                    }
                })
                .fold(0.0, f64::max);
            (score, s)
        })
        .collect();
    ranked.sort_by(|x, y| {
        y.0.total_cmp(&x.0)
            .then(y.1.df.cmp(&x.1.df))
            .then_with(|| x.1.name.cmp(&y.1.name))
    });
    ranked.truncate(config.max_features);
    let names = ranked.iter().map(|(_, s)| s.name.clone()).collect();
    let idf = ranked
        .iter()
        .map(|(_, s)| (((1.0 + n) / (1.0 + f64::from(s.df))).ln() + 1.0) as f32)
        .collect();
    Vocabulary { names, idf }
}

/// The most frequent words of the training texts, for the per-word cache.
pub(crate) fn frequent_words(normalized: &[String], max: usize) -> Vec<String> {
    let mut counts: FxHashMap<&str, u32> = FxHashMap::default();
    for t in normalized {
        for w in words(t) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    let mut v: Vec<(&str, u32)> = counts.into_iter().filter(|&(_, c)| c >= 2).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(max);
    v.into_iter().map(|(w, _)| w.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::TokenizerConfig;

    fn setup(config: FeatureConfig) -> Featurizer {
        let texts: Vec<String> = [
            "عندي مخالفه رادار",
            "ابي ادفع المخالفه",
            "3ndi mo5alfa radar",
            "thank you dubai police",
            "شكرا شرطه دبي",
            "thank you so much",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let labels = [0, 0, 0, 1, 1, 1];
        let tok = Tokenizer::train(
            &TokenizerConfig {
                vocab_size: 100,
                min_frequency: 1,
                ..Default::default()
            },
            &texts,
        )
        .unwrap();
        let vocab = select_vocabulary(&config, Some(&tok), &texts, &labels, 2);
        let words = frequent_words(&texts, 100);
        Featurizer::new(config, Some(tok), vocab, &words).unwrap()
    }

    #[test]
    fn vectors_are_unit_length_and_sorted() {
        let f = setup(FeatureConfig::default());
        for text in [
            "عندي مخالفه",
            "thank you",
            "mo5alfa radar radar",
            "zzz unknown",
        ] {
            let v = f.featurize(text);
            if v.is_empty() {
                continue;
            }
            let norm: f32 = v.iter().map(|(_, x)| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-4, "{text}");
            assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "{text}");
        }
    }

    #[test]
    fn cached_and_uncached_words_agree() {
        let f = setup(FeatureConfig::default());
        let g =
            Featurizer::new(f.config.clone(), f.tokenizer.clone(), f.vocabulary(), &[]).unwrap();
        for text in ["عندي مخالفه رادار", "thank you so much", "3ndi radar 🙏"] {
            // First call computes and caches unseen words, second reads them.
            assert_eq!(f.featurize(text), g.featurize(text), "{text}");
            assert_eq!(f.featurize(text), g.featurize(text), "{text}");
        }
        assert!(g.seen.len() > 0);
        g.clear_word_cache();
        assert_eq!(g.seen.len(), 0);
    }

    #[test]
    fn fast_word_ids_match_named_features() {
        // `word_ids` (hash only) must find exactly the features that
        // `word_features` names, for every family and odd word lengths.
        let f = setup(FeatureConfig {
            min_df: 1,
            ..Default::default()
        });
        let long = "م".repeat(40);
        for w in [
            "مخالفه",
            "mo5alfa",
            "radar",
            "a",
            "🙏",
            "<user>",
            long.as_str(),
        ] {
            let mut fast = Vec::new();
            f.word_ids(w, &mut fast);
            let mut named = Vec::new();
            word_features(&f.config, f.tokenizer.as_ref(), w, &mut |fam, parts| {
                if let Some(&id) = f.index.get(&feature_hash(fam, parts)) {
                    named.push(id);
                }
            });
            fast.sort_unstable();
            named.sort_unstable();
            assert_eq!(fast, named, "{w}");
        }
        for tf in 1..20 {
            assert!((sublinear_tf(tf) - (1.0 + (tf as f32).ln())).abs() < 1e-6);
        }
    }

    #[test]
    fn counting_table_agrees_with_sorting() {
        // The per-thread table must give exactly what sorting all raw ids
        // gives, in either order, including a feature repeated past the
        // table's u16 range (the slow path) and the message after it (the
        // table must be clean again).
        let f = setup(FeatureConfig::default());
        let flood = "thank ".repeat(70_000);
        for text in [
            "عندي مخالفه رادار رادار رادار",
            "mo5alfa radar 3ndi",
            "",
            "zzz",
            flood.as_str(),
            "thank you so much",
        ] {
            let want = f.term_frequencies_by_sorting(text, true);
            assert_eq!(f.term_frequencies(text), want);
            let mut unsorted = f.with_term_frequencies(text, false, |tf| tf.to_vec());
            unsorted.sort_by_key(|p| p.0);
            assert_eq!(unsorted, want);
        }
        let thank = f.term_frequencies_by_sorting(&flood, true);
        assert!(thank.iter().any(|&(_, t)| t > 1.0 + (65_535f32).ln()));
        // Nested use on one thread falls back to a fresh table.
        let nested = f.with_term_frequencies("radar radar", true, |outer| {
            (outer.to_vec(), f.term_frequencies("radar radar"))
        });
        assert_eq!(nested.0, nested.1);
    }

    proptest::proptest! {
        #[test]
        fn radix_sort_sorts(
            dim in proptest::sample::select(vec![2usize, 255, 256, 257, 65_536, 80_000, 1 << 22, 1 << 23]),
            seed in proptest::collection::vec(proptest::num::u32::ANY, 0..600),
        ) {
            let mut v: Vec<u32> = seed.iter().map(|x| x % dim as u32).collect();
            let mut want = v.clone();
            want.sort_unstable();
            sort_ids(&mut v, dim);
            proptest::prop_assert_eq!(v, want);
        }
    }

    #[test]
    fn families_switch_and_names_are_readable() {
        let only_words = FeatureConfig {
            bigrams: false,
            subwords: false,
            char_ngrams: false,
            min_df: 1,
            ..Default::default()
        };
        let f = setup(only_words);
        assert!((0..f.dim() as u32).all(|i| f.name(i).starts_with("w:")));
        let all = setup(FeatureConfig {
            min_df: 1,
            bigrams: true,
            ..Default::default()
        });
        for fam in ["w:", "b:", "s:", "c:"] {
            assert!(
                (0..all.dim() as u32).any(|i| all.name(i).starts_with(fam)),
                "{fam}"
            );
        }
    }

    #[test]
    fn arabizi_variants_share_char_ngrams() {
        let f = setup(FeatureConfig {
            min_df: 1,
            ..Default::default()
        });
        let a = f.featurize("mo5alfa");
        let b = f.featurize("mo5alfaa");
        let shared = a
            .iter()
            .filter(|(i, _)| b.iter().any(|(j, _)| i == j))
            .count();
        assert!(shared >= 3, "only {shared} shared");
    }

    #[test]
    fn check_rejects_bad_config() {
        let bad = FeatureConfig {
            char_min: 4,
            char_max: 2,
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let none = FeatureConfig {
            words: false,
            bigrams: false,
            subwords: false,
            char_ngrams: false,
            ..Default::default()
        };
        assert!(none.check().is_err());
        let future = FeatureConfig {
            arabizi_scheme: ARABIZI_SCHEME + 1,
            ..Default::default()
        };
        let err = future.check().unwrap_err().to_string();
        assert!(err.contains("arabizi_scheme"), "{err}");
    }

    #[test]
    fn saved_configs_without_a_scheme_keep_the_first_rules() {
        // A model saved before the field existed transliterates as it was
        // trained to; new models record the newest rules.
        let old: FeatureConfig = serde_json::from_str(r#"{"transliterate": true}"#).unwrap();
        assert_eq!(old.arabizi_scheme, 1);
        assert_eq!(FeatureConfig::default().arabizi_scheme, ARABIZI_SCHEME);
        let roundtrip: FeatureConfig =
            serde_json::from_str(&serde_json::to_string(&FeatureConfig::default()).unwrap())
                .unwrap();
        assert_eq!(roundtrip, FeatureConfig::default());
    }
}
