//! Second stage: splits normalized text into words and words into subwords
//! with a Hugging Face `tokenizers` model trained on our own messages.
//!
//! mujib's [`Normalizer`](crate::Normalizer) has already done all
//! normalization, so the HF pipeline gets no normalizer of its own (BERT's
//! would strip hamza and NFKD would split أ). Words repeat constantly in this
//! traffic, so callers cache per-word results (see `features`).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BPE, BpeTrainer};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, Model};

use crate::error::{Error, Result};
use crate::normalize::{EMAIL_TOKEN, MENTION_TOKEN, URL_TOKEN};

/// Which HF subword model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubwordModel {
    /// WordPiece (BERT-style, `##` continuation prefix).
    WordPiece,
    /// Byte-pair encoding.
    Bpe,
    /// SentencePiece-style unigram language model.
    Unigram,
}

/// Settings for training the subword tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenizerConfig {
    /// The subword algorithm.
    pub model: SubwordModel,
    /// Target vocabulary size.
    pub vocab_size: usize,
    /// Minimum frequency of a merge/piece.
    pub min_frequency: u64,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig {
            // BPE, not WordPiece: WordPiece training in `tokenizers` 0.23 is
            // not reproducible run to run (its merges depend on hash-map
            // order), and a model must retrain identically for a seed.
            // Accuracy of the two was the same within 0.001 macro-F1.
            model: SubwordModel::Bpe,
            vocab_size: 6000,
            min_frequency: 2,
        }
    }
}

const UNK: &str = "[UNK]";

/// A trained subword tokenizer. `Send + Sync`; used through `&self`.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    hf: tokenizers::Tokenizer,
}

impl Tokenizer {
    /// Trains a subword model on already-normalized texts.
    pub fn train<S: AsRef<str>>(config: &TokenizerConfig, texts: &[S]) -> Result<Self> {
        if config.vocab_size < 100 {
            return Err(Error::param("vocab_size", "must be at least 100"));
        }
        let err = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        let special = vec![AddedToken::from(UNK, true)];
        let (model, mut trainer): (ModelWrapper, TrainerWrapper) = match config.model {
            SubwordModel::WordPiece => (
                WordPiece::builder()
                    .unk_token(UNK.into())
                    .build()
                    .map_err(err)?
                    .into(),
                WordPieceTrainer::builder()
                    .vocab_size(config.vocab_size)
                    .min_frequency(config.min_frequency)
                    .special_tokens(special)
                    .show_progress(false)
                    .build()
                    .into(),
            ),
            SubwordModel::Bpe => (
                BPE::builder()
                    .unk_token(UNK.into())
                    .build()
                    .map_err(err)?
                    .into(),
                BpeTrainer::builder()
                    .vocab_size(config.vocab_size)
                    .min_frequency(config.min_frequency)
                    .special_tokens(special)
                    .show_progress(false)
                    .build()
                    .into(),
            ),
            SubwordModel::Unigram => (
                Unigram::default().into(),
                UnigramTrainer::builder()
                    .vocab_size(config.vocab_size as u32)
                    .unk_token(Some(UNK.into()))
                    .special_tokens(special)
                    .show_progress(false)
                    .build()
                    .map_err(|e| Error::Tokenizer(e.to_string()))?
                    .into(),
            ),
        };
        let mut hf = tokenizers::Tokenizer::new(model);
        hf.with_pre_tokenizer(Some(Whitespace {}));
        // Train on the words exactly as `words` splits them, so training and
        // use agree even where HF's regex and ours would differ.
        let joined: Vec<String> = texts
            .iter()
            .map(|t| words(t.as_ref()).collect::<Vec<_>>().join(" "))
            .collect();
        hf.train(&mut trainer, joined.iter()).map_err(err)?;
        Ok(Tokenizer { hf })
    }

    /// Loads a tokenizer from standard HF tokenizer JSON.
    pub fn from_json(json: &str) -> Result<Self> {
        let hf = tokenizers::Tokenizer::from_str(json)
            .map_err(|e| Error::Tokenizer(format!("cannot load tokenizer JSON: {e}")))?;
        Ok(Tokenizer { hf })
    }

    /// Standard HF tokenizer JSON, loadable by `tokenizers` in Rust or Python.
    pub fn to_json(&self) -> Result<String> {
        self.hf
            .to_string(false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Subword pieces of one word. Unknown pieces come back as `[UNK]`.
    pub fn word_pieces(&self, word: &str) -> Vec<String> {
        match self.hf.get_model().tokenize(word) {
            Ok(tokens) => tokens.into_iter().map(|t| t.value).collect(),
            Err(_) => vec![UNK.to_string()],
        }
    }

    /// Vocabulary ids of the subword pieces of one word; `[UNK]`'s id (if
    /// any) when the model cannot tokenize it. Cheaper than
    /// [`word_pieces`](Self::word_pieces): no string per piece.
    pub fn word_piece_ids(&self, word: &str, out: &mut Vec<u32>) {
        let model = self.hf.get_model();
        match model.tokenize(word) {
            Ok(tokens) => out.extend(tokens.iter().map(|t| t.id)),
            Err(_) => out.extend(model.token_to_id(UNK)),
        }
    }

    /// Every subword piece with its vocabulary id.
    pub fn vocab(&self) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = self.hf.get_model().get_vocab().into_iter().collect();
        v.sort_by_key(|&(_, id)| id);
        v
    }

    /// Subword pieces of a whole normalized text.
    pub fn tokenize(&self, normalized: &str) -> Vec<String> {
        words(normalized)
            .flat_map(|w| self.word_pieces(w))
            .collect()
    }

    /// Number of entries in the subword vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.hf.get_model().get_vocab_size()
    }
}

/// Splits normalized text into words: runs of letters/digits/marks/`_`, runs
/// of other visible characters (punctuation, emoji), and the placeholder
/// tokens `<url>`, `<email>`, `<user>` kept whole.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        rest = rest.trim_start();
        let first = rest.chars().next()?;
        if first == '<' {
            for tok in [URL_TOKEN, EMAIL_TOKEN, MENTION_TOKEN] {
                if rest.starts_with(tok) {
                    let (w, r) = rest.split_at(tok.len());
                    rest = r;
                    return Some(w);
                }
            }
        }
        let wordy = is_word_char(first);
        let end = rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c.is_whitespace() || is_word_char(c) != wordy || (!wordy && c == '<'))
            .map_or(rest.len(), |(i, _)| i);
        let (w, r) = rest.split_at(end);
        rest = r;
        Some(w)
    })
}

fn is_word_char(c: char) -> bool {
    // Fast answers for ASCII and the Arabic block, which are nearly all of
    // the traffic; `is_alphanumeric` is a table search for anything else.
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let cp = c as u32;
    if (0x0600..0x0700).contains(&cp) {
        return ARABIC_WORD_CHARS[(cp - 0x0600) as usize];
    }
    is_word_char_slow(c)
}

fn is_word_char_slow(c: char) -> bool {
    c.is_alphanumeric()
        || c == '_'
        || matches!(c, '\u{0300}'..='\u{036F}' | '\u{064B}'..='\u{065F}')
}

/// `is_word_char_slow` for U+0600–U+06FF, computed once.
static ARABIC_WORD_CHARS: std::sync::LazyLock<[bool; 256]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|i| char::from_u32(0x0600 + i as u32).is_some_and(is_word_char_slow))
});

/// The newest Arabizi transliteration rules (see [`arabizi_to_arabic`]).
pub const ARABIZI_SCHEME: u8 = 3;

/// A rough Arabizi → Arabic-script transliteration of the Latin words of a
/// text, or `None` when the text has no Arabizi: the newest rules
/// ([`ARABIZI_SCHEME`]); see [`arabizi_to_arabic_with`].
pub fn arabizi_to_arabic(text: &str) -> Option<String> {
    arabizi_to_arabic_with(text, ARABIZI_SCHEME)
}

/// [`arabizi_to_arabic`] under the rules of `scheme`, which a model
/// records so its features stay the same when the rules change:
///
/// - 1: only the words that contain an Arabizi digit (3, 7, 5 …) and a
///   letter are transliterated.
/// - 2: as 1, and when one word of the text looks like an Arabizi word
///   (two letters or more with such a digit, not `3pm` or `5th`), every
///   Latin word of two letters or more is, so "bus madaris ma8loob" gives
///   "بس ماداريس ماغلوب", not only "ماغلوب". 5-fold CV macro-F1 on the 8,116-message corpus: Arabizi
///   0.832 → 0.852, all languages 0.8855 → 0.8868 (English 0.868 → 0.860
///   and mixed 0.914 → 0.908, where English words get transliterated too).
/// - 3: as 2, and a single `a` or `i` inside a word is dropped as a short
///   vowel, and 8 is ق rather than غ. FAQ top-1 on the calibration set's
///   374 answerable Arabizi messages 0.778 → 0.813; 5-fold CV macro-F1 on
///   the 11,186 + 1,095-message corpus: Arabizi 0.859 → 0.872, all 0.8934
///   → 0.8953.
///
/// Short vowels are dropped, long ones kept, because Arabic spelling omits
/// short vowels; the result is only meant to share character n-grams with
/// Arabic text, not to be read.
pub fn arabizi_to_arabic_with(text: &str, scheme: u8) -> Option<String> {
    // Most messages have no Arabizi digit at all; one pass over the bytes
    // settles them without splitting words (this was 5% of prediction).
    if !text.bytes().any(is_arabizi_digit) {
        return None;
    }
    let every_word = scheme >= 2 && text.split_whitespace().any(looks_arabizi);
    // Scheme 3: a single `a` or `i` inside a word is a short vowel, which
    // Arabic does not write ("ra5sati" is رخصتي, not راخساتي), and 8 is
    // ق, as Gulf writers use it ("a8dar", "wa8t", "no8a6").
    let (short_vowels, gulf_8) = (scheme >= 3, scheme >= 3);
    let mut out = String::new();
    for word in text.split_whitespace() {
        let w = word.as_bytes();
        let arabizi = w.iter().any(|b| b.is_ascii_alphabetic())
            && ((every_word && w.len() >= 2) || w.iter().copied().any(is_arabizi_digit));
        if !arabizi || !word.is_ascii() {
            continue;
        }
        let mut i = 0;
        if !out.is_empty() {
            out.push(' ');
        }
        while i < w.len() {
            let pair = if i + 1 < w.len() {
                Some((w[i], w[i + 1]))
            } else {
                None
            };
            let two = match pair {
                Some((b's', b'h')) => Some('ش'),
                Some((b'k', b'h')) => Some('خ'),
                Some((b'g', b'h')) => Some('غ'),
                Some((b't', b'h')) => Some('ث'),
                Some((b'd', b'h')) => Some('ذ'),
                Some((b'a', b'a')) => Some('ا'),
                Some((b'e', b'e')) | Some((b'i', b'i')) => Some('ي'),
                Some((b'o', b'o')) | Some((b'o', b'u')) | Some((b'u', b'u')) => Some('و'),
                _ => None,
            };
            if let Some(c) = two {
                out.push(c);
                i += 2;
                continue;
            }
            let (first, last) = (i == 0, i + 1 == w.len());
            let c = match w[i] {
                b'a' if first || last || !short_vowels => Some('ا'),
                b'a' => None,
                b'e' | b'o' | b'u' if first => Some('ا'),
                b'i' if first => Some('ا'),
                b'i' if last || !short_vowels => Some('ي'),
                b'i' => None,
                b'e' | b'o' | b'u' => None,
                b'b' | b'p' => Some('ب'),
                b't' => Some('ت'),
                b'j' | b'g' => Some('ج'),
                b'7' => Some('ح'),
                b'5' => Some('خ'),
                b'd' => Some('د'),
                b'r' => Some('ر'),
                b'z' => Some('ز'),
                b's' => Some('س'),
                b'9' => Some('ص'),
                b'6' => Some('ط'),
                b'3' => Some('ع'),
                b'8' if gulf_8 => Some('ق'),
                b'8' => Some('غ'),
                b'f' | b'v' => Some('ف'),
                b'q' => Some('ق'),
                b'k' | b'c' => Some('ك'),
                b'l' => Some('ل'),
                b'm' => Some('م'),
                b'n' => Some('ن'),
                b'h' => Some('ه'),
                b'w' => Some('و'),
                b'y' => Some('ي'),
                b'2' => Some('ا'),
                _ => None,
            };
            if let Some(c) = c {
                out.push(c);
            }
            i += 1;
        }
    }
    (!out.trim().is_empty()).then_some(out)
}

/// A digit Arabizi writes for an Arabic letter.
fn is_arabizi_digit(b: u8) -> bool {
    matches!(b, b'2' | b'3' | b'5' | b'6' | b'7' | b'8' | b'9')
}

/// Whether a word reads as Arabizi: two letters or more and an Arabizi
/// digit, and not a number with a unit or an ordinal (`3pm`, `5th`, `2km`).
/// One-letter codes (`e11`, `x5`) have fewer than two letters.
fn looks_arabizi(word: &str) -> bool {
    let w = word.as_bytes();
    let letters = w.iter().filter(|b| b.is_ascii_alphabetic()).count();
    if letters < 2 || !w.iter().copied().any(is_arabizi_digit) {
        return false;
    }
    let unit = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let number_then_unit = unit.len() < word.len()
        && [
            "st", "nd", "rd", "th", "am", "pm", "km", "kg", "min", "mins", "hr", "hrs", "sec",
            "mb", "gb", "kmh", "yrs", "k",
        ]
        .iter()
        .any(|u| unit.eq_ignore_ascii_case(u));
    !number_then_unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabizi_schemes() {
        // Scheme 1 reads only the words with a digit.
        assert_eq!(
            arabizi_to_arabic_with("bus madaris ma8loob", 1).as_deref(),
            Some("ماغلوب")
        );
        // Scheme 2 reads the whole message once one word is Arabizi.
        let two = arabizi_to_arabic_with("bus madaris ma8loob", 2).unwrap();
        assert_eq!(two, "بس ماداريس ماغلوب");
        // Scheme 3 drops a single `a` or `i` inside a word, keeps it at
        // either end, and reads 8 as ق; models of scheme 2 keep its rules.
        assert_eq!(
            arabizi_to_arabic_with("ra5sati no8a6 mo5alfa", 2).as_deref(),
            Some("راخساتي نغاط مخالفا")
        );
        assert_eq!(
            arabizi_to_arabic_with("ra5sati no8a6 mo5alfa", 3).as_deref(),
            Some("رخستي نقط مخلفا")
        );
        assert_eq!(
            arabizi_to_arabic_with("a8dar 3ala", 3).as_deref(),
            Some("اقدر علا")
        );
        // Times, ordinals and one-letter codes are not Arabizi words.
        for text in ["meeting at 3pm today", "the 5th exit", "exit e11 jammed"] {
            let t = arabizi_to_arabic_with(text, 2).unwrap_or_default();
            assert!(!t.contains("متنج") && !t.contains("اكست"), "{text}: {t}");
        }
        assert!(looks_arabizi("3ndi") && looks_arabizi("ro7") && !looks_arabizi("x5"));
        assert_eq!(arabizi_to_arabic("hello world"), None);
        assert_eq!(
            arabizi_to_arabic("hello 3ndi"),
            arabizi_to_arabic_with("hello 3ndi", ARABIZI_SCHEME)
        );
    }

    #[test]
    fn splits_words_punctuation_emoji_and_placeholders() {
        let got: Vec<_> = words("<user> وين الرادار?? 3ndi mo5alfa 🙏😡 <url>x").collect();
        assert_eq!(
            got,
            [
                "<user>",
                "وين",
                "الرادار",
                "??",
                "3ndi",
                "mo5alfa",
                "🙏😡",
                "<url>",
                "x"
            ]
        );
        assert_eq!(words("   ").count(), 0);
        assert_eq!(words("<<a").collect::<Vec<_>>(), ["<", "<", "a"]);
    }

    fn corpus() -> Vec<&'static str> {
        vec![
            "ابي اجدد الرخصه",
            "كيف اجدد الرخصه",
            "abgha ajaded el rokhsa",
            "how to renew my driving licence",
            "renew my emirates id please",
            "مخالفه رادار على شارع الشيخ زايد",
            "عندي مخالفه رادار",
            "3ndi mo5alfa radar",
        ]
    }

    #[test]
    fn fast_word_char_table_agrees_with_unicode() {
        for cp in 0..0x3000u32 {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(is_word_char(c), is_word_char_slow(c), "U+{cp:04X}");
            }
        }
    }

    #[test]
    fn trains_each_model_and_round_trips_json() {
        for model in [
            SubwordModel::WordPiece,
            SubwordModel::Bpe,
            SubwordModel::Unigram,
        ] {
            let cfg = TokenizerConfig {
                model,
                vocab_size: 120,
                min_frequency: 1,
            };
            let t = Tokenizer::train(&cfg, &corpus()).unwrap();
            let pieces = t.tokenize("الرخصه renew");
            assert!(!pieces.is_empty(), "{model:?}");
            let back = Tokenizer::from_json(&t.to_json().unwrap()).unwrap();
            assert_eq!(back.tokenize("الرخصه renew"), pieces, "{model:?}");
        }
    }

    #[test]
    fn rejects_bad_json_and_tiny_vocab() {
        assert!(matches!(
            Tokenizer::from_json("{"),
            Err(Error::Tokenizer(_))
        ));
        let cfg = TokenizerConfig {
            vocab_size: 5,
            ..Default::default()
        };
        assert!(matches!(
            Tokenizer::train(&cfg, &corpus()),
            Err(Error::InvalidParam { .. })
        ));
    }
}
