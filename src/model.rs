//! The model file: one self-describing, versioned, checksummed file holding
//! everything prediction needs, so it can never drift from training.
//!
//! Layout (all integers little-endian):
//! ```text
//! "MUJIBMDL"          8 bytes  magic
//! version             u32      FORMAT_VERSION
//! header length       u64      then a JSON header (format, metadata, normalizer
//!                              config, feature config, tokenizer JSON, labels,
//!                              vocabulary names, cached words, calibration)
//! body length         u64      then f32 arrays: idf[D], weights[D*L], bias[L],
//!                              and if present urgent weights[D], urgent bias
//! crc32               u32      of every byte before it
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::classify::{Classifier, LinearHead, TrainParams, UrgencyHead, frequency_order};
use crate::data::LabelledMessage;
use crate::error::{Error, Result};
use crate::features::{FeatureConfig, Featurizer, Vocabulary};
use crate::normalize::{Normalizer, NormalizerConfig};
use crate::tokenize::Tokenizer;

const MAGIC: &[u8; 8] = b"MUJIBMDL";
/// Name of the format, written in the header.
pub const FORMAT_NAME: &str = "mujib-model";
/// Version this build writes; it reads every version up to this one.
///
/// - 1: the first layout.
/// - 2: the same layout; the feature config records `arabizi_scheme`. A
///   version-1 file has none and is read with scheme 1, the rules it was
///   trained with; a build that knows only version 1 refuses a version-2
///   file instead of counting its Arabizi features by other rules.
pub const FORMAT_VERSION: u32 = 2;

/// Training metadata stored in every model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// mujib version that trained the model.
    pub mujib_version: String,
    /// UTC date and time of training, ISO 8601.
    pub created: String,
    /// CRC-32 over the training messages (text, label), hex.
    pub data_fingerprint: String,
    /// Training messages.
    pub n_train: usize,
    /// Training messages per label.
    pub label_counts: BTreeMap<String, usize>,
    /// The learner kept.
    pub learner: String,
    /// The exact parameters used.
    pub params: TrainParams,
    /// Cross-validated macro-F1, if cross-validation ran.
    pub cv_macro_f1: Option<f64>,
    /// Cross-validated accuracy, if cross-validation ran.
    pub cv_accuracy: Option<f64>,
    /// Macro-F1 on the held-out `test` split, if the data had one.
    pub test_macro_f1: Option<f64>,
    /// Seconds the training run took.
    pub train_seconds: f64,
}

impl ModelMeta {
    pub(crate) fn new(
        params: TrainParams,
        learner: &str,
        train: &[&LabelledMessage],
        label_counts: BTreeMap<String, usize>,
    ) -> Self {
        let mut h = crc32fast::Hasher::new();
        for m in train {
            h.update(m.text.as_bytes());
            h.update(b"\x1f");
            h.update(m.label.as_bytes());
            h.update(b"\x1e");
        }
        ModelMeta {
            mujib_version: env!("CARGO_PKG_VERSION").to_string(),
            created: now_iso8601(),
            data_fingerprint: format!("{:08x}", h.finalize()),
            n_train: train.len(),
            label_counts,
            learner: learner.to_string(),
            params,
            cv_macro_f1: None,
            cv_accuracy: None,
            test_macro_f1: None,
            train_seconds: 0.0,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    meta: ModelMeta,
    normalizer: NormalizerConfig,
    features: FeatureConfig,
    tokenizer: Option<String>,
    labels: Vec<String>,
    vocabulary: Vec<String>,
    cache_words: Vec<String>,
    temperature: f32,
    urgent_threshold: Option<f32>,
    /// Labels that gate the urgent flag (see `UrgencyHead::labels`); absent
    /// in files written before it existed, which then have no gate.
    #[serde(default)]
    urgent_labels: Vec<String>,
}

pub(crate) fn write(clf: &Classifier, mut w: impl Write) -> Result<()> {
    let vocab = clf.featurizer.vocabulary();
    let header = Header {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        meta: clf.meta.clone(),
        normalizer: clf.normalizer.config().clone(),
        features: clf.featurizer.config().clone(),
        tokenizer: clf
            .featurizer
            .tokenizer()
            .map(Tokenizer::to_json)
            .transpose()?,
        labels: clf.head.labels.clone(),
        vocabulary: vocab.names,
        cache_words: clf.featurizer.cached_words(),
        temperature: clf.head.temperature,
        urgent_threshold: clf.urgency.as_ref().map(|u| u.threshold),
        urgent_labels: clf
            .urgency
            .iter()
            .flat_map(|u| &u.labels)
            .filter_map(|&k| clf.head.labels.get(k).cloned())
            .collect(),
    };
    let header = serde_json::to_vec(&header)?;
    let mut body = Vec::new();
    let mut put = |xs: &[f32]| {
        for x in xs {
            body.extend_from_slice(&x.to_le_bytes());
        }
    };
    put(&vocab.idf);
    put(&clf.head.weights);
    put(&clf.head.bias);
    if let Some(u) = &clf.urgency {
        put(&u.weights);
        put(&[u.bias]);
    }
    let mut file = Vec::with_capacity(header.len() + body.len() + 32);
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&(header.len() as u64).to_le_bytes());
    file.extend_from_slice(&header);
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&body);
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    w.write_all(&file)?;
    Ok(())
}

/// A cursor over the file bytes that turns running out into a clear error.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                Error::ModelCorrupt(format!(
                    "truncated: {what} needs {n} bytes at offset {}, file has {}",
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>> {
        let b = self.take(
            n.checked_mul(4)
                .ok_or_else(|| Error::ModelCorrupt(format!("{what} too large")))?,
            what,
        )?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }
}

pub(crate) fn read(mut r: impl Read) -> Result<Classifier> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        let head = &bytes[..bytes.len().min(8)];
        return Err(Error::ModelFormat {
            expected: FORMAT_NAME,
            found: String::from_utf8_lossy(head).into_owned(),
        });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version == 0 || version > FORMAT_VERSION {
        return Err(Error::ModelVersion {
            found: version,
            supported: format!("1..={FORMAT_VERSION}"),
        });
    }
    let mut c = Cursor {
        bytes: &bytes,
        pos: 12,
    };
    let hlen = c.u64("header length")? as usize;
    let header_bytes = c.take(hlen, "header")?;
    let blen = c.u64("body length")? as usize;
    c.take(blen, "weights")?;
    let end = c.pos;
    let stored = c.take(4, "checksum")?;
    if c.pos != bytes.len() {
        return Err(Error::ModelCorrupt(format!(
            "{} unexpected bytes after the checksum",
            bytes.len() - c.pos
        )));
    }
    let stored = u32::from_le_bytes(stored.try_into().expect("4 bytes"));
    let actual = crc32fast::hash(&bytes[..end]);
    if stored != actual {
        return Err(Error::ModelCorrupt(format!(
            "checksum mismatch (stored {stored:08x}, computed {actual:08x}): the file is damaged"
        )));
    }
    let header: Header = serde_json::from_slice(header_bytes)
        .map_err(|e| Error::ModelCorrupt(format!("header: {e}")))?;
    if header.format != FORMAT_NAME {
        return Err(Error::ModelFormat {
            expected: FORMAT_NAME,
            found: header.format,
        });
    }
    let d = header.vocabulary.len();
    let l = header.labels.len();
    if l < 2 {
        return Err(Error::ModelCorrupt(format!("{l} labels; need at least 2")));
    }
    let mut body = Cursor {
        bytes: &bytes[end - blen..end],
        pos: 0,
    };
    let idf = body.f32s(d, "idf")?;
    let weights = body.f32s(d * l, "label weights")?;
    let bias = body.f32s(l, "label bias")?;
    let urgency = match header.urgent_threshold {
        Some(threshold) => {
            let weights = body.f32s(d, "urgent weights")?;
            let bias = body.f32s(1, "urgent bias")?[0];
            let labels = header
                .urgent_labels
                .iter()
                .map(|name| {
                    header.labels.iter().position(|l| l == name).ok_or_else(|| {
                        Error::ModelCorrupt(format!("urgent label `{name}` is not a model label"))
                    })
                })
                .collect::<Result<Vec<usize>>>()?;
            Some(UrgencyHead {
                weights,
                bias,
                threshold,
                labels,
            })
        }
        None => None,
    };
    if body.pos != blen {
        return Err(Error::ModelCorrupt(format!(
            "weights section has {} bytes, expected {}",
            blen, body.pos
        )));
    }
    let tokenizer = header
        .tokenizer
        .as_deref()
        .map(Tokenizer::from_json)
        .transpose()?;
    let mut head = LinearHead {
        labels: header.labels,
        weights,
        bias,
        temperature: header.temperature,
    };
    let mut urgency = urgency;
    let vocab = frequency_order(
        Vocabulary {
            names: header.vocabulary,
            idf,
        },
        &mut head,
        urgency.as_mut(),
    );
    let featurizer = Featurizer::new(header.features, tokenizer, vocab, &header.cache_words)?;
    Ok(Classifier::from_parts(
        Normalizer::new(header.normalizer),
        featurizer,
        head,
        urgency,
        header.meta,
    ))
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ`, without a date crate: the
/// civil-from-days algorithm of Howard Hinnant's `chrono`-compatible notes.
fn now_iso8601() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_date_shape() {
        let s = now_iso8601();
        assert_eq!(s.len(), 20);
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }

    #[test]
    fn rejects_wrong_magic_and_versions() {
        assert!(matches!(
            read(&b"hello world!!"[..]),
            Err(Error::ModelFormat { .. })
        ));
        assert!(matches!(read(&b""[..]), Err(Error::ModelFormat { .. })));
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&99u32.to_le_bytes());
        assert!(matches!(
            read(&v[..]),
            Err(Error::ModelVersion { found: 99, .. })
        ));
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&1000u64.to_le_bytes());
        let err = read(&v[..]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
