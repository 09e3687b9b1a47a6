//! Labelled training data: JSONL files (or folders of them), one message per
//! line, read with every bad line reported by file and line number.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One labelled message as stored in `data/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledMessage {
    /// Unique id.
    #[serde(default)]
    pub id: String,
    /// The raw message text.
    pub text: String,
    /// The label (any string: the label set is whatever the data has).
    pub label: String,
    /// Language/variety tag (`ar-gulf`, `en`, `arabizi`, ...), if known.
    #[serde(default)]
    pub lang: Option<String>,
    /// Whether the message is an emergency in progress, if annotated.
    #[serde(default)]
    pub urgent: Option<bool>,
    /// Channel the message came through, if known.
    #[serde(default)]
    pub channel: Option<String>,
    /// `train` or `test`, if the data carries a fixed split.
    #[serde(default)]
    pub split: Option<String>,
}

/// A line that could not be used, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// File it came from.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

impl From<BadLine> for Error {
    fn from(b: BadLine) -> Self {
        Error::Data {
            path: b.path,
            line: b.line,
            reason: b.reason,
        }
    }
}

/// Messages read from one or more files, and the lines that were skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The usable messages, in file order.
    pub messages: Vec<LabelledMessage>,
    /// Lines that could not be used.
    pub bad: Vec<BadLine>,
}

/// Reads a JSONL file, or every `*.jsonl` file of a folder (sorted by name, so
/// order and thus training are reproducible). Bad lines are collected, not
/// fatal; unreadable files are.
pub fn load_labelled(path: &Path) -> Result<Loaded> {
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let p = entry.map_err(|e| Error::io(path, e))?.path();
            if p.extension().is_some_and(|e| e == "jsonl") {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::Data {
                path: path.to_path_buf(),
                line: 0,
                reason: "folder has no .jsonl files".into(),
            });
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Loaded::default();
    for file in files {
        let bytes = fs::read(&file).map_err(|e| Error::io(&file, e))?;
        parse_jsonl(&file, &bytes, &mut out);
    }
    Ok(out)
}

fn parse_jsonl(path: &Path, bytes: &[u8], out: &mut Loaded) {
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let bad = |reason: String| BadLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            out.bad.push(bad("invalid UTF-8".into()));
            continue;
        };
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<LabelledMessage>(text) {
            Ok(m) if m.text.trim().is_empty() => out.bad.push(bad("field `text` is empty".into())),
            Ok(m) if m.label.trim().is_empty() => {
                out.bad.push(bad("field `label` is empty".into()))
            }
            Ok(m) => out.messages.push(m),
            Err(e) => out.bad.push(bad(format!("column {}: {e}", e.column()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_bad_lines_with_numbers() {
        let data = b"{\"text\":\"hi\",\"label\":\"thanks\"}\n\n{\"text\":\"x\"}\n{bad\n{\"text\":\"  \",\"label\":\"a\"}\n";
        let mut out = Loaded::default();
        parse_jsonl(Path::new("f.jsonl"), data, &mut out);
        assert_eq!(out.messages.len(), 1);
        let lines: Vec<u64> = out.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert!(out.bad[0].reason.contains("label"), "{:?}", out.bad[0]);
        let mut out = Loaded::default();
        parse_jsonl(Path::new("f.jsonl"), b"\xff\xfe\n", &mut out);
        assert_eq!(out.bad[0].reason, "invalid UTF-8");
    }
}
