//! `mujib classify`: label, confidence, top-3 and explanation.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mujib::{Classifier, Prediction};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The message; without it, each line of stdin is one message.
    text: Option<String>,
    /// Model file.
    #[arg(long, env = "MUJIB_MODEL")]
    model: Option<PathBuf>,
    /// One JSON object per message.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let clf = Classifier::load(super::model_path(a.model))?;
    let show = |text: &str, out: &mut dyn Write| -> anyhow::Result<()> {
        let p = clf.classify(text);
        if a.json {
            writeln!(out, "{}", serde_json::to_string(&p)?)?;
        } else {
            write_human(&p, out)?;
        }
        Ok(())
    };
    super::each_message(a.text.as_deref(), show)
}

fn write_human(p: &Prediction, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "label: {}  (confidence {:.2}){}",
        p.label,
        p.confidence,
        if p.urgent { "  URGENT" } else { "" }
    )?;
    let top: Vec<String> = p
        .top(3)
        .iter()
        .map(|s| format!("{} {:.2}", s.label, s.score))
        .collect();
    writeln!(out, "top-3: {}", top.join(", "))?;
    let why: Vec<String> = p
        .explanation
        .iter()
        .map(|c| format!("{:?} {:+.2}", c.feature, c.weight))
        .collect();
    writeln!(
        out,
        "because: {}",
        if why.is_empty() {
            "no known words".into()
        } else {
            why.join(", ")
        }
    )
}
