//! `mujib train` and `mujib eval`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use mujib::{Classifier, LabelledMessage, Learner, SubwordModel, TrainParams, load_labelled};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Labelled JSONL file or folder of them (repeatable). Messages with
    /// `"split": "test"` are held out and evaluated after training.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Where to write the model.
    #[arg(long)]
    out: PathBuf,
    /// Cross-validation folds (0 to skip).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed for the fold assignment.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Learner: logistic, naive-bayes, ftrl, or auto (cross-validate all three and keep the best).
    #[arg(long, value_enum, default_value_t = LearnerArg::Ftrl)]
    learner: LearnerArg,
    /// JSON file with TrainParams (normalizer, tokenizer, features, ...);
    /// flags given on the command line override it.
    #[arg(long)]
    params: Option<PathBuf>,
    /// Write the report as JSON here (default: <out>.report.json).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Stop at the first bad input line instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Turn off a feature family (repeatable): words, bigrams, subwords, chars,
    /// translit (features of the Arabizi transliteration).
    #[arg(long = "no", value_name = "FAMILY")]
    disable: Vec<String>,
    /// Turn on a feature family that is off by default (repeatable), e.g.
    /// `--with bigrams`; same names as `--no`.
    #[arg(long = "with", value_name = "FAMILY")]
    enable: Vec<String>,
    /// Subword model: wordpiece, bpe or unigram.
    #[arg(long)]
    subword_model: Option<String>,
    /// Keep at most this many features.
    #[arg(long)]
    max_features: Option<usize>,
    /// L2 penalty of logistic regression.
    #[arg(long)]
    l2: Option<f64>,
    /// Columns the FTRL heads see (top features by chi²).
    #[arg(long)]
    dense_features: Option<usize>,
    /// L-BFGS iterations.
    #[arg(long)]
    max_iterations: Option<u64>,
    /// Additive smoothing of naive Bayes.
    #[arg(long)]
    nb_alpha: Option<f64>,
    /// Smallest and largest character n-gram, e.g. `2-5`.
    #[arg(long)]
    char_range: Option<String>,
    /// FTRL learning rate, L2 penalty and epochs, e.g. `0.5,0.01,8`.
    #[arg(long)]
    ftrl: Option<String>,
    /// Do not learn the urgent flag.
    #[arg(long)]
    no_urgency: bool,
    /// Recall the urgent threshold aims for on cross-validation (the lower
    /// end of its 95% interval), e.g. `0.98`.
    #[arg(long)]
    urgent_recall: Option<f64>,
    /// Precision the urgent flag must keep on cross-validation (the lower
    /// end of its 95% interval); the threshold is lowered as far as it
    /// allows. `1` keeps the recall target's cut.
    #[arg(long)]
    urgent_precision: Option<f64>,
    /// Switch the hamza-seat normalization rule on.
    #[arg(long)]
    hamza_seats: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LearnerArg {
    Logistic,
    NaiveBayes,
    Ftrl,
    Auto,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model file.
    #[arg(long, env = "MUJIB_MODEL")]
    model: Option<PathBuf>,
    /// Labelled JSONL file or folder. With `--split test`, only that split.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Only evaluate messages of this split (`train` or `test`).
    #[arg(long)]
    split: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Stop at the first bad input line.
    #[arg(long)]
    strict: bool,
}

fn load(paths: &[PathBuf], strict: bool) -> anyhow::Result<Vec<LabelledMessage>> {
    let mut all = Vec::new();
    for p in paths {
        let loaded = load_labelled(p)?;
        if let Some(first) = loaded.bad.first() {
            if strict {
                return Err(mujib::Error::from(first.clone()).into());
            }
            for b in &loaded.bad {
                eprintln!(
                    "mujib: skipped {}:{}: {}",
                    b.path.display(),
                    b.line,
                    b.reason
                );
            }
            eprintln!(
                "mujib: {} bad line(s) skipped in {} (use --strict to fail)",
                loaded.bad.len(),
                p.display()
            );
        }
        all.extend(loaded.messages);
    }
    if all.is_empty() {
        bail!("no usable messages in the given data");
    }
    Ok(all)
}

pub fn run_train(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let mut params: TrainParams = match &a.params {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}: invalid train params", p.display()))?,
        None => TrainParams::default(),
    };
    params.folds = a.folds;
    params.seed = a.seed;
    params.learner = match a.learner {
        LearnerArg::Logistic => Learner::Logistic,
        LearnerArg::NaiveBayes => Learner::NaiveBayes,
        LearnerArg::Ftrl => Learner::Ftrl,
        LearnerArg::Auto => Learner::Auto,
    };
    for (fam, on, flag) in a
        .disable
        .iter()
        .map(|f| (f, false, "--no"))
        .chain(a.enable.iter().map(|f| (f, true, "--with")))
    {
        let f = &mut params.features;
        *match fam.as_str() {
            "words" => &mut f.words,
            "bigrams" => &mut f.bigrams,
            "subwords" => &mut f.subwords,
            "chars" => &mut f.char_ngrams,
            "translit" => &mut f.transliterate,
            other => {
                bail!(
                    "{flag} {other}: unknown feature family (words, bigrams, subwords, chars, translit)"
                )
            }
        } = on;
    }
    if let Some(m) = &a.subword_model {
        params.tokenizer.model = match m.as_str() {
            "wordpiece" => SubwordModel::WordPiece,
            "bpe" => SubwordModel::Bpe,
            "unigram" => SubwordModel::Unigram,
            other => bail!("--subword-model {other}: use wordpiece, bpe or unigram"),
        };
    }
    if let Some(m) = a.max_features {
        params.features.max_features = m;
    }
    if let Some(l2) = a.l2 {
        params.l2 = l2;
    }
    if let Some(d) = a.dense_features {
        params.dense_features = d;
    }
    if let Some(m) = a.max_iterations {
        params.max_iterations = m;
    }
    if let Some(x) = a.nb_alpha {
        params.nb_alpha = x;
    }
    if let Some(r) = &a.char_range {
        let (lo, hi) = r
            .split_once('-')
            .and_then(|(l, h)| Some((l.parse().ok()?, h.parse().ok()?)))
            .with_context(|| format!("--char-range {r}: expected MIN-MAX, e.g. 2-5"))?;
        params.features.char_min = lo;
        params.features.char_max = hi;
    }
    if let Some(f) = &a.ftrl {
        let v: Vec<f64> = f.split(',').filter_map(|x| x.parse().ok()).collect();
        if v.len() != 3 {
            bail!("--ftrl {f}: expected ALPHA,L2,EPOCHS");
        }
        params.ftrl_alpha = v[0];
        params.ftrl_l2 = v[1];
        params.ftrl_epochs = v[2] as usize;
    }
    if a.no_urgency {
        params.urgency = false;
    }
    if let Some(r) = a.urgent_recall {
        params.urgent_recall = r;
    }
    if let Some(r) = a.urgent_precision {
        params.urgent_precision = r;
    }
    if a.hamza_seats {
        params.normalizer.hamza_seats = true;
    }
    let valid = params.check()?;
    let data = load(&a.data, a.strict)?;
    eprintln!("mujib: training on {} messages ...", data.len());
    let (clf, report) = valid.train(&data)?;
    clf.save(&a.out)?;
    let report_path = a.report.unwrap_or_else(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".report.json");
        PathBuf::from(p)
    });
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", report_path.display()))?;
    // Written through a locked handle so a closed pipe (`| head`) ends the
    // run quietly instead of panicking in `println!`.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "learner: {:?}  (cv macro-F1 by learner: {:?})",
        report.learner, report.cv_macro_f1_by_learner
    )?;
    writeln!(
        out,
        "train: {}  test: {}  features: {} (dense {})",
        report.n_train, report.n_test, report.dim, report.dense_dim
    )?;
    writeln!(
        out,
        "temperature: {:.3}  urgent threshold: {:?}",
        report.temperature, report.urgent_threshold
    )?;
    if let Some(cv) = &report.cv {
        writeln!(
            out,
            "\n== {}-fold cross-validation (out-of-fold) ==\n{}",
            a.folds,
            cv.to_text()
        )?;
    }
    if let Some(t) = &report.test {
        writeln!(out, "== held-out test split ==\n{}", t.to_text())?;
    }
    writeln!(out, "training time: {:.1} s", report.train_seconds)?;
    writeln!(
        out,
        "model: {}  report: {}",
        a.out.display(),
        report_path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_eval(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let model = super::model_path(a.model);
    let clf = Classifier::load(&model)?;
    let mut data = load(&a.data, a.strict)?;
    if let Some(s) = &a.split {
        data.retain(|m| m.split.as_deref() == Some(s.as_str()));
        if data.is_empty() {
            bail!("no messages with split `{s}`");
        }
    }
    // Written through a locked handle so a closed pipe (`| head`) ends the
    // run quietly instead of panicking in `println!`.
    let mut out = std::io::stdout().lock();
    let report = clf.evaluate(&data);
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", report.to_text())?;
    }
    Ok(ExitCode::SUCCESS)
}
