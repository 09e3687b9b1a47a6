//! `mujib respond`: the full answer for a message, and `mujib faq-eval`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mujib::{Responder, Response};

/// Where the model, FAQ and replies come from; shared by respond and label.
#[derive(Debug, Clone, clap::Args)]
pub struct Sources {
    /// Model file [default: models/mujib.model].
    #[arg(long, env = "MUJIB_MODEL")]
    pub model: Option<PathBuf>,
    /// FAQ file [default: data/faq.jsonl].
    #[arg(long, env = "MUJIB_FAQ")]
    pub faq: Option<PathBuf>,
    /// Reply templates [default: data/replies.json].
    #[arg(long, env = "MUJIB_REPLIES")]
    pub replies: Option<PathBuf>,
    /// Hand-written messages, answerable or not, that the FAQ's no-match
    /// rule is learned from [default: data/faq_calibration.jsonl when
    /// --faq is not given].
    #[arg(long, env = "MUJIB_FAQ_CALIBRATION")]
    pub faq_calibration: Option<PathBuf>,
    /// Learn the no-match rule from the FAQ's own phrasings only.
    #[arg(long, conflicts_with = "faq_calibration")]
    pub no_faq_calibration: bool,
    /// Cut on the FAQ's no-match probability (0..=1): at or above it, no
    /// entry is used. Overrides the cut learned for the FAQ.
    #[arg(long)]
    pub faq_threshold: Option<f32>,
}

impl Sources {
    pub fn load(&self) -> anyhow::Result<Responder> {
        let model = super::model_path(self.model.clone());
        // The shipped calibration set belongs to the shipped FAQ: another
        // FAQ gets it only when asked for.
        let calibration = match (&self.faq, &self.faq_calibration) {
            _ if self.no_faq_calibration => None,
            (_, Some(c)) => Some(c.clone()),
            (None, None) => Some(PathBuf::from("data/faq_calibration.jsonl")),
            (Some(_), None) => None,
        };
        let faq = self
            .faq
            .clone()
            .unwrap_or_else(|| PathBuf::from("data/faq.jsonl"));
        let replies = self
            .replies
            .clone()
            .unwrap_or_else(|| PathBuf::from("data/replies.json"));
        let what = || {
            format!(
                "loading model {}, FAQ {}, replies {}",
                model.display(),
                faq.display(),
                replies.display()
            )
        };
        let r = match calibration {
            Some(c) => Responder::load_calibrated(&model, &faq, &replies, &c)
                .with_context(|| format!("{}, FAQ calibration {}", what(), c.display()))?,
            None => Responder::load(&model, &faq, &replies).with_context(what)?,
        };
        Ok(match self.faq_threshold {
            Some(t) => r.with_faq_threshold(t),
            None => r,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The message; without it, each line of stdin is one message.
    text: Option<String>,
    #[command(flatten)]
    sources: Sources,
    /// One JSON object per message.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let r = a.sources.load()?;
    let show = |text: &str, out: &mut dyn Write| -> anyhow::Result<()> {
        let resp = r.respond(text);
        if a.json {
            writeln!(out, "{}", serde_json::to_string(&resp)?)?;
        } else {
            write_human(&resp, out)?;
        }
        Ok(())
    };
    super::each_message(a.text.as_deref(), show)
}

fn write_human(r: &Response, out: &mut dyn Write) -> std::io::Result<()> {
    let top: Vec<String> = r
        .top3
        .iter()
        .map(|s| format!("{} {:.2}", s.label, s.score))
        .collect();
    writeln!(
        out,
        "label:       {} ({:.2})   top-3: {}",
        r.label,
        r.confidence,
        top.join(", ")
    )?;
    writeln!(
        out,
        "urgent:      {}",
        if r.urgent {
            "YES - emergency, 999 first"
        } else {
            "no"
        }
    )?;
    writeln!(out, "language:    {:?}", r.language)?;
    match (&r.faq_id, r.faq_score) {
        (Some(id), Some(s)) => writeln!(out, "faq:         {id} (score {s:.2})")?,
        _ => writeln!(out, "faq:         no match")?,
    }
    writeln!(
        out,
        "needs human: {}{}",
        r.needs_human,
        r.handoff_reason
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    )?;
    writeln!(out, "reply:\n{}\n", r.reply.as_deref().unwrap_or("(none)"))
}

#[derive(Debug, clap::Args)]
pub struct FaqEvalArgs {
    /// FAQ test set: JSONL with `text` and `expected` (an entry id or null).
    #[arg(long, default_value = "data/faq_test.jsonl")]
    data: PathBuf,
    #[command(flatten)]
    sources: Sources,
    /// Also print a threshold sweep.
    #[arg(long)]
    sweep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run_faq_eval(a: FaqEvalArgs) -> anyhow::Result<ExitCode> {
    let r = a.sources.load()?;
    let cases = mujib::FaqCase::load(&a.data)?;
    let scored: Vec<(Option<String>, mujib::FaqLookup)> = cases
        .iter()
        .map(|c| (c.expected.clone(), r.faq_lookup(&c.text, 10)))
        .collect();
    // Written through a locked handle so a closed pipe (`| head`) ends the
    // run quietly instead of panicking in `println!`.
    let mut out = std::io::stdout().lock();
    let report = mujib::faq_report(&scored, r.faq().threshold());
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(out, "{}", report.to_text())?;
    }
    if a.sweep {
        let rule = r.faq().no_match_rule();
        if let (Some(p), Some(rc)) = (rule.precision, rule.recall) {
            writeln!(
                out,
                "learned cut {:.2}: cross-validated precision {p:.3} recall {rc:.3}",
                rule.threshold
            )?;
        }
        if let Some(auc) = rule.auc {
            writeln!(
                out,
                "cross-validated AUC on the calibration messages {auc:.4}"
            )?;
        }
        writeln!(
            out,
            "no-match cut  top1(answerable)  no-match P  no-match R"
        )?;
        for t in (10..=90).step_by(5).map(|t| t as f32 / 100.0) {
            let rep = mujib::faq_report(&scored, t);
            writeln!(
                out,
                "{t:>12.2}  {:>16.4}  {:>10.4}  {:>10.4}",
                rep.top1_accuracy, rep.no_match_precision, rep.no_match_recall
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
