//! mujib (مجيب, "the one who answers") labels citizen messages.
pub mod error;
mod normalize;
pub use error::{Error, Result};
pub use normalize::{EMAIL_TOKEN, MENTION_TOKEN, Normalizer, NormalizerConfig, URL_TOKEN};
