//! mujib (مجيب, "the one who answers") labels citizen messages.
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
pub use features::{FeatureConfig, Featurizer, SparseVec};
pub use model::{FORMAT_NAME, FORMAT_VERSION, ModelMeta};
pub use normalize::{EMAIL_TOKEN, MENTION_TOKEN, Normalizer, NormalizerConfig, URL_TOKEN};
pub use tokenize::{SubwordModel, Tokenizer, TokenizerConfig, words};
pub use faq::{Bilingual, DEFAULT_LABEL_WEIGHT, DEFAULT_THRESHOLD, FaqEntry, FaqIndex, FaqMatch, FaqReport, arabizi_to_arabic, faq_report};
pub use respond::{Language, ReplyTemplates, Responder, ResponderConfig, Response};
