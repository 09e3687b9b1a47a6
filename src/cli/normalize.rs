//! `mujib normalize`: the normalizer as a line filter.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mujib::{Normalizer, NormalizerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input file; `-` or none reads stdin.
    input: Option<PathBuf>,
    /// JSON file with normalizer rules to change, e.g. {"hamza_seats": true}.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config: NormalizerConfig = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid normalizer config", p.display()))?
        }
        None => NormalizerConfig::default(),
    };
    let n = Normalizer::new(config);
    let (reader, name) = super::open_input(args.input.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut bad = 0u64;
    // Bytes, not lines of String: a line of invalid UTF-8 must not stop the
    // run or shift the line count; it is repaired lossily and reported.
    for (i, line) in reader.split(b'\n').enumerate() {
        let mut line = line.with_context(|| format!("reading {name}"))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = match String::from_utf8(line) {
            Ok(s) => s,
            Err(e) => {
                bad += 1;
                eprintln!(
                    "mujib: {name}:{}: invalid UTF-8, replaced with U+FFFD",
                    i + 1
                );
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        out.write_all(n.normalize(&text).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
