//! Command-line front end: one file per subcommand, only I/O and
//! presentation around library calls.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod classify;
mod label;
mod normalize;
mod respond;
mod train;

/// Shipped default model, relative to the repository root.
pub const DEFAULT_MODEL: &str = "models/mujib.model";

/// mujib (مجيب): labels, flags and answers citizen messages.
#[derive(Debug, Parser)]
#[command(name = "mujib", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Normalize lines of text (file or stdin) to stdout, one per line.
    Normalize(normalize::Args),
    /// Train a model from labelled JSONL data and report its quality.
    Train(train::TrainArgs),
    /// Evaluate an existing model on labelled JSONL data.
    Eval(train::EvalArgs),
    /// Classify one message (argument) or each line of stdin.
    Classify(classify::Args),
    /// Label, flag and answer one message (argument) or each line of stdin.
    Respond(respond::Args),
    /// Measure FAQ matching on a test set (top-1, MRR, no-match P/R).
    FaqEval(respond::FaqEvalArgs),
    /// Label, flag and answer every row of CSV or JSONL files.
    Label(label::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Normalize(a) => normalize::run(a),
        Command::Train(a) => train::run_train(a),
        Command::Eval(a) => train::run_eval(a),
        Command::Classify(a) => classify::run(a),
        Command::Respond(a) => respond::run(a),
        Command::FaqEval(a) => respond::run_faq_eval(a),
        Command::Label(a) => label::run(a),
    }
}

/// Model path from the flag, else `MUJIB_MODEL` (clap `env`), else the default.
pub fn model_path(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
}

/// Opens a file, or stdin for `-`/none, with a display name for messages.
pub fn open_input(
    path: Option<&std::path::Path>,
) -> anyhow::Result<(Box<dyn std::io::BufRead>, String)> {
    use anyhow::Context;
    match path {
        None => Ok((
            Box::new(std::io::BufReader::new(std::io::stdin())),
            "<stdin>".into(),
        )),
        Some(p) if p.as_os_str() == "-" => Ok((
            Box::new(std::io::BufReader::new(std::io::stdin())),
            "<stdin>".into(),
        )),
        Some(p) => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            Ok((
                Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
                p.display().to_string(),
            ))
        }
    }
}

/// Calls `show` on the TEXT argument, or on each line of stdin when there is
/// none, writing to a locked stdout: the shape of `classify` and `respond`.
pub fn each_message(
    text: Option<&str>,
    show: impl Fn(&str, &mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match text {
        Some(t) => show(t, &mut out)?,
        None => {
            for line in std::io::stdin().lock().lines() {
                show(&line?, &mut out)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
