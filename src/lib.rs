//! mujib (مجيب, "the one who answers") reads the messages citizens and
//! residents send to a government body, labels each one, flags emergencies
//! and drafts the reply from a bilingual FAQ.
//!
//! # The pipeline
//!
//! ```text
//! raw text ─▶ Normalizer ─▶ words + Tokenizer (HF subwords) ─▶ Featurizer (sparse tf-idf)
//!          ─▶ Classifier (linear weights learned by linfa) ─▶ label, confidence, urgent
//!          ─▶ FaqIndex (best entry) ─▶ Responder (reply in the writer's language, or a human)
//! ```
//!
//! Each stage is a small `Send + Sync` type used through `&self`; load once,
//! call from many threads. The model file carries the normalizer config,
//! the tokenizer and the feature settings it was trained with.
//!
//! # Example
//!
//! ```
//! # fn main() -> mujib::Result<()> {
//! use mujib::{Normalizer, Responder};
//!
//! // The first stage on its own:
//! assert_eq!(Normalizer::default().normalize("شكــــراااا  جزيلاً ﻻ"), "شكرا جزيلا لا");
//!
//! // The whole pipeline with the shipped model and FAQ:
//! // The FAQ's no-match rule is learned from hand-written messages, as
//! // the CLI does; `Responder::load` learns it from the FAQ alone.
//! let responder = Responder::load_calibrated(
//!     "models/mujib.model",
//!     "data/faq.jsonl",
//!     "data/replies.json",
//!     "data/faq_calibration.jsonl",
//! )?;
//! let r = responder.respond("3ndi mo5alfa radar, kaif adfa3ha?");
//! assert_eq!(r.label, "traffic");
//! assert!(!r.urgent);
//! println!("{} ({:.2}) -> {:?}", r.label, r.confidence, r.reply);
//! # Ok(()) }
//! ```

pub mod error;

mod classify;
mod data;
mod faq;
mod features;
mod model;
mod normalize;
mod respond;
mod tokenize;

pub use classify::{
    BinaryMetrics, Classifier, Contribution, EvalReport, LabelMetrics, LabelScore, Learner,
    Prediction, TrainParams, TrainReport, ValidTrainParams,
};
pub use data::{BadLine, LabelledMessage, Loaded, load_labelled};
pub use error::{Error, Result};
pub use faq::{
    Bilingual, DEFAULT_LABEL_WEIGHT, DEFAULT_THRESHOLD, FaqCase, FaqEntry, FaqIndex, FaqLookup,
    FaqMatch, FaqReport, MIN_CALIBRATION_ENTRIES, NoMatchRule, arabizi_to_arabic, faq_report,
};
pub use features::{FeatureConfig, Featurizer, SparseVec};
pub use model::{FORMAT_NAME, FORMAT_VERSION, ModelMeta};
pub use normalize::{EMAIL_TOKEN, MENTION_TOKEN, Normalizer, NormalizerConfig, URL_TOKEN};
pub use respond::{Language, ReplyTemplates, Responder, ResponderConfig, Response};
pub use tokenize::{
    ARABIZI_SCHEME, SubwordModel, Tokenizer, TokenizerConfig, arabizi_to_arabic_with, words,
};
