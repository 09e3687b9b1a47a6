//! `mujib label`: labels every row of CSV or JSONL exports. Rows stream
//! through in bounded chunks, each labelled in parallel, and come out in
//! input order with every input column kept and mujib's columns added.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use csv::ByteRecord;
use indicatif::{ProgressBar, ProgressStyle};
use mujib::{Contribution, Responder, Response};
use rayon::prelude::*;
use serde_json::{Map, Value};

use super::respond::Sources;

/// Columns (CSV) or fields (JSONL) tried, in order, when none is named.
const DEFAULT_TEXT: [&str; 5] = ["text", "message", "body", "content", "tweet"];
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Chunks waiting between stages; with the chunk being labelled this bounds
/// memory to a handful of chunks whatever the file size.
const QUEUE: usize = 2;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every row was labelled; 1 when some rows were bad \
    (they are still written, with mujib_error set, and listed on stderr); 2 on a fatal error \
    or when --strict stopped at a bad row."
)]
pub struct Args {
    /// CSV or JSONL files, processed in order into one output; `-` or none reads stdin.
    inputs: Vec<PathBuf>,
    /// Output file [default: stdout].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Input format [default: from the extension, else from the first byte].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// CSV delimiter: one character, or `tab` [default: sniffed from the header among , ; tab |].
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// CSV column holding the message [default: the first of text, message, body, content, tweet].
    #[arg(long, value_name = "NAME")]
    text_column: Option<String>,
    /// JSONL field holding the message, a dotted path such as `message.body` [default: as for CSV].
    #[arg(long, value_name = "PATH")]
    text_field: Option<String>,
    /// mujib columns to add, comma-separated (each is prefixed with `mujib_`).
    /// `error` is always added; `all` adds every one. In CSV, top3 and
    /// explanation are `name:score` pairs joined by `|`.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "label,confidence,urgent,language,needs_human,faq_id,reply,error"
    )]
    fields: Vec<Field>,
    /// Stop at the first bad row (exit code 2) instead of flagging it and going on.
    #[arg(long)]
    strict: bool,
    /// Labelling threads [default: one per core].
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    threads: usize,
    /// Rows read, labelled and written together.
    #[arg(long, default_value_t = 4096, hide = true)]
    chunk_size: usize,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Csv,
    #[value(alias = "ndjson")]
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Field {
    Label,
    Confidence,
    Top3,
    Urgent,
    Language,
    NeedsHuman,
    HandoffReason,
    FaqId,
    FaqScore,
    Reply,
    Explanation,
    Error,
    All,
}

impl Field {
    const EVERY: [Field; 12] = [
        Field::Label,
        Field::Confidence,
        Field::Top3,
        Field::Urgent,
        Field::Language,
        Field::NeedsHuman,
        Field::HandoffReason,
        Field::FaqId,
        Field::FaqScore,
        Field::Reply,
        Field::Explanation,
        Field::Error,
    ];

    /// Output column name, prefixed so it cannot clash with an input column.
    fn column(self) -> &'static str {
        match self {
            Field::Label => "mujib_label",
            Field::Confidence => "mujib_confidence",
            Field::Top3 => "mujib_top3",
            Field::Urgent => "mujib_urgent",
            Field::Language => "mujib_language",
            Field::NeedsHuman => "mujib_needs_human",
            Field::HandoffReason => "mujib_handoff_reason",
            Field::FaqId => "mujib_faq_id",
            Field::FaqScore => "mujib_faq_score",
            Field::Reply => "mujib_reply",
            Field::Explanation => "mujib_explanation",
            Field::Error | Field::All => "mujib_error",
        }
    }
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!("`{s}` is not one ASCII character or `tab`")),
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.chunk_size == 0 {
        bail!("--chunk-size must be at least 1");
    }
    let fields = output_fields(&a.fields);
    let inputs = if a.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.inputs.clone()
    };
    check_paths(&inputs, a.output.as_deref())?;
    let names: Vec<String> = inputs.iter().map(|p| display_name(p)).collect();

    let (mut first, first_name) = open(&inputs[0])?;
    let format = match a.format {
        Some(f) => f,
        None => guess_format(&inputs, a.output.as_deref(), &mut first)?,
    };
    let (source, kind) = match format {
        Format::Csv => {
            let src = CsvSource::open(first, 0, &first_name, a.delimiter)?;
            let plan = CsvPlan::new(
                &src,
                a.text_column.as_deref().or(a.text_field.as_deref()),
                &fields,
            )?;
            (Source::Csv(src), Kind::Csv(plan))
        }
        Format::Jsonl => (Source::Json(JsonSource::new(first, 0)), Kind::Json),
    };
    let text_field = a.text_field.as_deref().or(a.text_column.as_deref());

    let responder = a.sources.load()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()?;
    let labeller = Labeller {
        responder: &responder,
        explain: fields.contains(&Field::Explanation),
        fields: &fields,
    };
    let progress = progress_bar();
    let started = Instant::now();

    let (tally, fatal) = std::thread::scope(|s| {
        let (in_tx, in_rx) = sync_channel(QUEUE);
        let (out_tx, out_rx) = sync_channel(QUEUE);
        let (rest, names_ref, delimiter) = (&inputs[1..], &names, a.delimiter);
        s.spawn(move || read_all(source, rest, names_ref, delimiter, a.chunk_size, in_tx));
        let (kind_ref, fields_ref, progress_ref) = (&kind, &fields, &progress);
        let output = a.output.as_deref();
        let writer = s.spawn(move || {
            write_all(
                output,
                kind_ref,
                fields_ref,
                names_ref,
                a.strict,
                progress_ref,
                out_rx,
            )
        });

        let mut fatal = None;
        let mut json_path: Option<Vec<String>> = None;
        for chunk in in_rx.iter() {
            let rows: Vec<Row> = match chunk {
                Ok(rows) => rows,
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
            };
            if matches!(kind, Kind::Json) && json_path.is_none() {
                match resolve_json_path(&rows, text_field, &names) {
                    Ok(p) => json_path = p,
                    Err(e) => {
                        fatal = Some(e);
                        break;
                    }
                }
            }
            let path = json_path.as_deref();
            let done: Vec<Done> = pool.install(|| {
                rows.into_par_iter()
                    .map(|r| labeller.label(r, &kind, path))
                    .collect()
            });
            if out_tx.send(done).is_err() {
                break; // the writer stopped: --strict or a write error
            }
        }
        // Closing both channels lets the reader and the writer finish.
        drop(in_rx);
        drop(out_tx);
        let tally = match writer.join() {
            Ok(t) => t,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (tally, fatal)
    });
    if let Some(p) = &progress {
        p.finish_and_clear();
    }
    let tally = tally?;
    if let Some(e) = fatal.filter(|_| !tally.stopped) {
        return Err(e);
    }
    eprint!("{}", tally.summary(started.elapsed()));
    Ok(if tally.stopped {
        ExitCode::from(2)
    } else if tally.errored > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The requested fields, deduplicated, `all` expanded, `error` always last
/// unless placed explicitly.
fn output_fields(asked: &[Field]) -> Vec<Field> {
    let mut out = Vec::new();
    for &f in asked {
        let expanded: &[Field] = if f == Field::All {
            &Field::EVERY
        } else {
            std::slice::from_ref(&f)
        };
        for &g in expanded {
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    if !out.contains(&Field::Error) {
        out.push(Field::Error);
    }
    out
}

fn is_stdin(p: &Path) -> bool {
    p.as_os_str() == "-"
}

fn display_name(p: &Path) -> String {
    if is_stdin(p) {
        "<stdin>".into()
    } else {
        p.display().to_string()
    }
}

fn check_paths(inputs: &[PathBuf], output: Option<&Path>) -> anyhow::Result<()> {
    if inputs.iter().filter(|p| is_stdin(p)).count() > 1 {
        bail!("stdin (`-`) can be read only once");
    }
    if let Some(out) = output
        .filter(|o| !is_stdin(o))
        .and_then(|o| o.canonicalize().ok())
    {
        for i in inputs.iter().filter(|p| !is_stdin(p)) {
            if i.canonicalize().is_ok_and(|i| i == out) {
                bail!("output {} is also an input; write elsewhere", i.display());
            }
        }
    }
    Ok(())
}

type Input = Box<dyn BufRead + Send>;

fn open(path: &Path) -> anyhow::Result<(Input, String)> {
    if is_stdin(path) {
        return Ok((
            Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
            "<stdin>".into(),
        ));
    }
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok((
        Box::new(BufReader::with_capacity(1 << 16, f)),
        path.display().to_string(),
    ))
}

fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" | "tsv" => Some(Format::Csv),
        "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
        _ => None,
    }
}

/// Format from the inputs' extensions (which must agree), else the output's,
/// else the first byte of the first input: `{` means JSONL.
fn guess_format(
    inputs: &[PathBuf],
    output: Option<&Path>,
    first: &mut Input,
) -> anyhow::Result<Format> {
    let mut known: Option<(Format, &Path)> = None;
    for p in inputs {
        if let Some(f) = format_of(p) {
            match known {
                Some((g, q)) if g != f => bail!(
                    "{} and {} have different formats; convert one or give --format",
                    q.display(),
                    p.display()
                ),
                _ => known = Some((f, p)),
            }
        }
    }
    if let Some(f) = known.map(|(f, _)| f).or_else(|| output.and_then(format_of)) {
        return Ok(f);
    }
    let buf = first.fill_buf().context("reading the first input")?;
    let buf = buf.strip_prefix(BOM).unwrap_or(buf);
    Ok(match buf.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Format::Jsonl,
        _ => Format::Csv,
    })
}

// ---------------------------------------------------------------- reading

/// One input row, as read: raw bytes, not yet checked.
struct Row {
    file: usize,
    line: u64,
    data: RowData,
}

enum RowData {
    Csv(ByteRecord),
    Json(Vec<u8>),
}

struct CsvSource {
    file: usize,
    name: String,
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: Option<ByteRecord>,
    delimiter: u8,
    bom: bool,
}

impl CsvSource {
    /// Strips a BOM, sniffs the delimiter from the header line and reads the header.
    fn open(
        mut input: Input,
        file: usize,
        name: &str,
        delimiter: Option<u8>,
    ) -> anyhow::Result<Self> {
        let mut first = Vec::new();
        input
            .read_until(b'\n', &mut first)
            .with_context(|| format!("reading {name}"))?;
        let bom = first.starts_with(BOM);
        if bom {
            first.drain(..BOM.len());
        }
        let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(&first));
        let chained: Box<dyn Read + Send> = Box::new(io::Cursor::new(first).chain(input));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(1 << 16)
            .from_reader(chained);
        let mut header = ByteRecord::new();
        let has_header = reader
            .read_byte_record(&mut header)
            .with_context(|| format!("reading the header of {name}"))?;
        Ok(CsvSource {
            file,
            name: name.to_string(),
            reader,
            header: has_header.then_some(header),
            delimiter,
            bom,
        })
    }

    fn columns(&self) -> Vec<String> {
        self.header
            .iter()
            .flatten()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }
}

/// The candidate that occurs most often outside quotes; `,` on a tie or none.
fn sniff_delimiter(line: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if let Some(i) = candidates.iter().position(|&c| c == b).filter(|_| !quoted) {
            counts[i] += 1;
        }
    }
    let best = (1..counts.len()).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    candidates[best]
}

struct JsonSource {
    file: usize,
    input: Input,
    line: u64,
}

impl JsonSource {
    fn new(input: Input, file: usize) -> Self {
        JsonSource {
            file,
            input,
            line: 0,
        }
    }
}

enum Source {
    Csv(CsvSource),
    Json(JsonSource),
}

impl Source {
    /// Appends rows until `rows` holds `max`; false at the end of the input.
    fn fill(&mut self, rows: &mut Vec<Row>, max: usize, names: &[String]) -> anyhow::Result<bool> {
        match self {
            Source::Csv(src) => {
                if src.header.is_none() {
                    return Ok(false);
                }
                while rows.len() < max {
                    let mut rec = ByteRecord::new();
                    let more = src
                        .reader
                        .read_byte_record(&mut rec)
                        .with_context(|| format!("reading {}", src.name))?;
                    if !more {
                        return Ok(false);
                    }
                    let line = rec.position().map_or(0, |p| p.line());
                    rows.push(Row {
                        file: src.file,
                        line,
                        data: RowData::Csv(rec),
                    });
                }
                Ok(true)
            }
            Source::Json(src) => {
                while rows.len() < max {
                    let mut buf = Vec::new();
                    let n = src
                        .input
                        .read_until(b'\n', &mut buf)
                        .with_context(|| format!("reading {}", names[src.file]))?;
                    if n == 0 {
                        return Ok(false);
                    }
                    src.line += 1;
                    if src.line == 1 && buf.starts_with(BOM) {
                        buf.drain(..BOM.len());
                    }
                    while buf.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                        buf.pop();
                    }
                    // Blank lines (a trailing newline, spacing) are not rows.
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    rows.push(Row {
                        file: src.file,
                        line: src.line,
                        data: RowData::Json(buf),
                    });
                }
                Ok(true)
            }
        }
    }
}

/// Reads every input in order, sending chunks of rows; stops at the first
/// fatal error (sent on) or when the receiver hangs up.
fn read_all(
    mut source: Source,
    rest: &[PathBuf],
    names: &[String],
    delimiter: Option<u8>,
    chunk: usize,
    tx: SyncSender<anyhow::Result<Vec<Row>>>,
) {
    let first_header = match &source {
        Source::Csv(s) => s.header.clone().map(|h| (h, s.name.clone())),
        Source::Json(_) => None,
    };
    let mut next = 0;
    let mut rows = Vec::with_capacity(chunk);
    loop {
        let more = match source.fill(&mut rows, chunk, names) {
            Ok(more) => more,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if !more {
            if next == rest.len() {
                break;
            }
            next += 1;
            match open_next(
                &rest[next - 1],
                next,
                &source,
                delimiter,
                first_header.as_ref(),
            ) {
                Ok(s) => source = s,
                Err(e) => {
                    if !rows.is_empty() && tx.send(Ok(std::mem::take(&mut rows))).is_err() {
                        return;
                    }
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if rows.len() >= chunk
            && tx
                .send(Ok(std::mem::replace(&mut rows, Vec::with_capacity(chunk))))
                .is_err()
        {
            return;
        }
    }
    if !rows.is_empty() {
        let _ = tx.send(Ok(rows));
    }
}

/// Opens a later input, which must be of the same kind and, for CSV, have
/// the first input's header.
fn open_next(
    path: &Path,
    file: usize,
    previous: &Source,
    delimiter: Option<u8>,
    first_header: Option<&(ByteRecord, String)>,
) -> anyhow::Result<Source> {
    let (input, name) = open(path)?;
    Ok(match previous {
        Source::Json(_) => Source::Json(JsonSource::new(input, file)),
        Source::Csv(_) => {
            let src = CsvSource::open(input, file, &name, delimiter)?;
            match (&src.header, first_header) {
                (Some(h), Some((first, first_name))) if h != first => bail!(
                    "{name} has other columns than {first_name}: [{}] instead of [{}]; \
                     files labelled together must share their header",
                    src.columns().join(", "),
                    first
                        .iter()
                        .map(String::from_utf8_lossy)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (Some(_), None) => bail!("{name} has a header but the first input was empty"),
                _ => {}
            }
            Source::Csv(src)
        }
    })
}

// ---------------------------------------------------------------- labelling

/// What the output needs to know about the CSV columns.
struct CsvPlan {
    header: ByteRecord,
    text: usize,
    text_name: String,
    delimiter: u8,
    bom: bool,
}

impl CsvPlan {
    fn new(src: &CsvSource, wanted: Option<&str>, fields: &[Field]) -> anyhow::Result<Self> {
        let columns = src.columns();
        let Some(header) = src.header.clone() else {
            // An empty input gives an empty output.
            return Ok(CsvPlan {
                header: ByteRecord::new(),
                text: 0,
                text_name: String::new(),
                delimiter: src.delimiter,
                bom: src.bom,
            });
        };
        let text = find_name(&columns, wanted).ok_or_else(|| {
            let list = if columns.is_empty() {
                "(none)".to_string()
            } else {
                columns.join(", ")
            };
            match wanted {
                Some(w) => anyhow::anyhow!("{}: no column `{w}`; its columns are: {list}", src.name),
                None => anyhow::anyhow!(
                    "{}: none of the columns {} exists; its columns are: {list}; choose one with --text-column",
                    src.name,
                    DEFAULT_TEXT.join(", ")
                ),
            }
        })?;
        for f in fields {
            if columns.iter().any(|c| c == f.column()) {
                bail!(
                    "{} already has a column `{}` (labelled before?); remove it or choose other --fields",
                    src.name,
                    f.column()
                );
            }
        }
        Ok(CsvPlan {
            header,
            text,
            text_name: columns[text].clone(),
            delimiter: src.delimiter,
            bom: src.bom,
        })
    }
}

/// Index of the wanted name (or the first default present): an exact match,
/// else a case-insensitive one (`Message` in a CRM export).
fn find_name(names: &[String], wanted: Option<&str>) -> Option<usize> {
    let candidates: Vec<&str> = wanted.map_or_else(|| DEFAULT_TEXT.to_vec(), |w| vec![w]);
    candidates.iter().find_map(|c| {
        names.iter().position(|n| n.trim() == *c).or_else(|| {
            names
                .iter()
                .position(|n| n.trim().to_lowercase() == c.to_lowercase())
        })
    })
}

enum Kind {
    Csv(CsvPlan),
    Json,
}

/// Finds the text field on the first JSON object of a chunk: the first
/// object fixes the path for the whole run, and one that lacks it stops the
/// run with the fields it does have. None when the chunk has no object.
fn resolve_json_path(
    rows: &[Row],
    wanted: Option<&str>,
    names: &[String],
) -> anyhow::Result<Option<Vec<String>>> {
    for row in rows {
        let RowData::Json(raw) = &row.data else {
            continue;
        };
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(raw) else {
            continue;
        };
        let candidates: Vec<&str> = wanted.map_or_else(|| DEFAULT_TEXT.to_vec(), |w| vec![w]);
        for c in &candidates {
            if let Some(path) = resolve_path(&obj, c) {
                return Ok(Some(path));
            }
        }
        let mut paths = Vec::new();
        list_paths(&obj, "", &mut paths);
        let list = if paths.is_empty() {
            "(none)".to_string()
        } else {
            paths.join(", ")
        };
        let at = format!("{}:{}", names[row.file], row.line);
        match wanted {
            Some(w) => bail!("{at}: no field `{w}`; its fields are: {list}"),
            None => bail!(
                "{at}: none of the fields {} exists; its fields are: {list}; choose one with --text-field",
                DEFAULT_TEXT.join(", ")
            ),
        }
    }
    Ok(None)
}

/// Matches each segment of a dotted path exactly, else case-insensitively,
/// and returns the keys as spelled in the data.
fn resolve_path(obj: &Map<String, Value>, dotted: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut cur = obj;
    let segments: Vec<&str> = dotted.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        let key = if cur.contains_key(*seg) {
            seg.to_string()
        } else {
            cur.keys()
                .find(|k| k.to_lowercase() == seg.to_lowercase())?
                .clone()
        };
        let value = &cur[&key];
        keys.push(key);
        if i + 1 < segments.len() {
            cur = value.as_object()?;
        }
    }
    Some(keys)
}

fn list_paths(obj: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in obj {
        let path = format!("{prefix}{k}");
        match v {
            Value::Object(inner) if !inner.is_empty() && prefix.matches('.').count() < 2 => {
                list_paths(inner, &format!("{path}."), out)
            }
            _ => out.push(path),
        }
    }
}

/// A labelled row, ready to write.
struct Done {
    file: usize,
    line: u64,
    result: Result<Brief, String>,
    out: Out,
}

/// What the summary counts.
struct Brief {
    label: String,
    urgent: bool,
    needs_human: bool,
}

enum Out {
    /// Input fields, then mujib's.
    Csv(ByteRecord, Vec<String>),
    /// The whole output line.
    Json(Vec<u8>),
}

struct Labelled {
    response: Response,
    explanation: Option<Vec<Contribution>>,
}

struct Labeller<'a> {
    responder: &'a Responder,
    fields: &'a [Field],
    explain: bool,
}

impl Labeller<'_> {
    fn label(&self, row: Row, kind: &Kind, path: Option<&[String]>) -> Done {
        let (result, out) = match (row.data, kind) {
            (RowData::Csv(rec), Kind::Csv(plan)) => {
                let result = self.label_csv(&rec, plan);
                let extra = self.csv_fields(&result);
                (result, Out::Csv(rec, extra))
            }
            (RowData::Json(raw), _) => {
                let (result, line) = self.label_json(&raw, path);
                (result, Out::Json(line))
            }
            (RowData::Csv(rec), Kind::Json) => {
                (Err("not a JSON line".into()), Out::Csv(rec, Vec::new()))
            }
        };
        Done {
            file: row.file,
            line: row.line,
            result: result.map(|l| Brief {
                urgent: l.response.urgent,
                needs_human: l.response.needs_human,
                label: l.response.label,
            }),
            out,
        }
    }

    fn respond(&self, text: &str) -> Labelled {
        Labelled {
            response: self.responder.respond(text),
            explanation: self
                .explain
                .then(|| self.responder.classifier().classify(text).explanation),
        }
    }

    fn label_csv(&self, rec: &ByteRecord, plan: &CsvPlan) -> Result<Labelled, String> {
        let width = plan.header.len();
        if rec.len() < width {
            return Err(format!("{} fields where the header has {width}", rec.len()));
        }
        if rec.len() > width {
            // Only the header's columns are written; the extra fields are
            // kept here so that nothing is lost.
            let extra: Vec<_> = rec
                .iter()
                .skip(width)
                .map(String::from_utf8_lossy)
                .collect();
            return Err(format!(
                "{} fields where the header has {width}; extra fields: {}",
                rec.len(),
                serde_json::to_string(&extra).unwrap_or_default()
            ));
        }
        let raw = rec.get(plan.text).unwrap_or_default();
        let text = std::str::from_utf8(raw).map_err(|e| {
            format!(
                "invalid UTF-8 in column `{}` at byte {}",
                plan.text_name,
                e.valid_up_to()
            )
        })?;
        if text.trim().is_empty() {
            return Err(format!("empty text in column `{}`", plan.text_name));
        }
        Ok(self.respond(text))
    }

    fn csv_fields(&self, result: &Result<Labelled, String>) -> Vec<String> {
        let l = match result {
            Ok(l) => l,
            Err(e) => {
                return self
                    .fields
                    .iter()
                    .map(|f| {
                        if *f == Field::Error {
                            e.clone()
                        } else {
                            String::new()
                        }
                    })
                    .collect();
            }
        };
        let r = &l.response;
        let pairs = |items: &mut dyn Iterator<Item = (&str, f32)>| {
            items
                .map(|(n, s)| format!("{n}:{s:.4}"))
                .collect::<Vec<_>>()
                .join("|")
        };
        self.fields
            .iter()
            .map(|f| match f {
                Field::Label => r.label.clone(),
                Field::Confidence => format!("{:.4}", r.confidence),
                Field::Top3 => pairs(&mut r.top3.iter().map(|s| (s.label.as_str(), s.score))),
                Field::Urgent => r.urgent.to_string(),
                Field::Language => language_name(r),
                Field::NeedsHuman => r.needs_human.to_string(),
                Field::HandoffReason => r.handoff_reason.clone().unwrap_or_default(),
                Field::FaqId => r.faq_id.clone().unwrap_or_default(),
                Field::FaqScore => r.faq_score.map(|s| format!("{s:.4}")).unwrap_or_default(),
                Field::Reply => r.reply.clone().unwrap_or_default(),
                Field::Explanation => pairs(
                    &mut l
                        .explanation
                        .iter()
                        .flatten()
                        .map(|c| (c.feature.as_str(), c.weight)),
                ),
                Field::Error | Field::All => String::new(),
            })
            .collect()
    }

    /// Labels one JSONL line and builds its output line: the input object
    /// byte for byte with mujib's fields appended, or, when the line is not
    /// an object, the line as a string in `mujib_input`.
    fn label_json(
        &self,
        raw: &[u8],
        path: Option<&[String]>,
    ) -> (Result<Labelled, String>, Vec<u8>) {
        let checked = std::str::from_utf8(raw)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))
            .and_then(|s| match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(obj)) => Ok((s, obj)),
                Ok(_) => Err("not a JSON object".to_string()),
                Err(e) => Err(format!("malformed JSON: {e}")),
            })
            .and_then(
                |(s, obj)| match self.fields.iter().find(|f| obj.contains_key(f.column())) {
                    Some(f) => Err(format!(
                        "already has a field `{}` (labelled before?)",
                        f.column()
                    )),
                    None => Ok((s, obj)),
                },
            );
        let mut out = Vec::with_capacity(raw.len() + 512);
        let (s, obj) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                out.extend_from_slice(b"{\"mujib_input\":");
                push_json_str(&mut out, &String::from_utf8_lossy(raw));
                out.push(b',');
                let result = Err(e);
                self.json_fields(&mut out, &result);
                out.extend_from_slice(b"}\n");
                return (result, out);
            }
        };
        let result = match path.and_then(|p| lookup(&obj, p)) {
            Some(Value::String(t)) if t.trim().is_empty() => Err("empty text".to_string()),
            Some(Value::String(t)) => Ok(self.respond(t)),
            Some(other) => Err(format!(
                "field `{}` is {}, not a string",
                path.unwrap_or_default().join("."),
                json_kind(other)
            )),
            None => Err(match path {
                Some(p) => format!("no field `{}`", p.join(".")),
                None => "no text field".to_string(),
            }),
        };
        // A parsed object ends with `}` once trailing whitespace is gone.
        let body = s.trim_end();
        let body = body.strip_suffix('}').unwrap_or(body);
        out.extend_from_slice(body.as_bytes());
        if !obj.is_empty() {
            out.push(b',');
        }
        self.json_fields(&mut out, &result);
        out.extend_from_slice(b"}\n");
        (result, out)
    }

    fn json_fields(&self, out: &mut Vec<u8>, result: &Result<Labelled, String>) {
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, f.column());
            out.push(b':');
            let l = match result {
                Err(e) => {
                    if *f == Field::Error {
                        push_json_str(out, e);
                    } else {
                        out.extend_from_slice(b"null");
                    }
                    continue;
                }
                Ok(l) => l,
            };
            let r = &l.response;
            let opt_str = |out: &mut Vec<u8>, s: &Option<String>| match s {
                Some(s) => push_json_str(out, s),
                None => out.extend_from_slice(b"null"),
            };
            match f {
                Field::Label => push_json_str(out, &r.label),
                Field::Confidence => push_json_num(out, r.confidence),
                Field::Top3 => push_json_pairs(
                    out,
                    "label",
                    "score",
                    r.top3.iter().map(|s| (s.label.as_str(), s.score)),
                ),
                Field::Urgent => out.extend_from_slice(if r.urgent { b"true" } else { b"false" }),
                Field::Language => push_json_str(out, &language_name(r)),
                Field::NeedsHuman => {
                    out.extend_from_slice(if r.needs_human { b"true" } else { b"false" })
                }
                Field::HandoffReason => opt_str(out, &r.handoff_reason),
                Field::FaqId => opt_str(out, &r.faq_id),
                Field::FaqScore => match r.faq_score {
                    Some(s) => push_json_num(out, s),
                    None => out.extend_from_slice(b"null"),
                },
                Field::Reply => opt_str(out, &r.reply),
                Field::Explanation => push_json_pairs(
                    out,
                    "feature",
                    "weight",
                    l.explanation
                        .iter()
                        .flatten()
                        .map(|c| (c.feature.as_str(), c.weight)),
                ),
                Field::Error | Field::All => out.extend_from_slice(b"null"),
            }
        }
    }
}

fn lookup<'v>(obj: &'v Map<String, Value>, path: &[String]) -> Option<&'v Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = obj;
    for p in parents {
        cur = cur.get(p)?.as_object()?;
    }
    cur.get(last)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The language as serialized in `Response` (`arabic`, `english`, …).
fn language_name(r: &Response) -> String {
    match serde_json::to_value(r.language) {
        Ok(Value::String(s)) => s,
        _ => format!("{:?}", r.language).to_lowercase(),
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn push_json_num(out: &mut Vec<u8>, x: f32) {
    if x.is_finite() {
        out.extend_from_slice(format!("{x:.4}").as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn push_json_pairs<'a>(
    out: &mut Vec<u8>,
    name: &str,
    value: &str,
    items: impl Iterator<Item = (&'a str, f32)>,
) {
    out.push(b'[');
    for (i, (n, v)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        push_json_str(out, name);
        out.push(b':');
        push_json_str(out, n);
        out.push(b',');
        push_json_str(out, value);
        out.push(b':');
        push_json_num(out, v);
        out.push(b'}');
    }
    out.push(b']');
}

// ---------------------------------------------------------------- writing

/// Counts for the closing summary.
#[derive(Default)]
struct Tally {
    read: u64,
    labelled: u64,
    errored: u64,
    urgent: u64,
    needs_human: u64,
    labels: HashMap<String, u64>,
    /// `--strict` stopped the run.
    stopped: bool,
}

impl Tally {
    fn summary(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.read as f64 / secs
        } else {
            0.0
        };
        let mut s = format!(
            "mujib label: {} rows read, {} labelled, {} errored; {} urgent, {} need a human ({secs:.1} s, {rate:.0} rows/s)\n",
            self.read, self.labelled, self.errored, self.urgent, self.needs_human
        );
        let mut labels: Vec<(&String, &u64)> = self.labels.iter().collect();
        labels.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (label, n) in labels {
            let share = 100.0 * *n as f64 / self.labelled.max(1) as f64;
            s.push_str(&format!("  {label:<20} {n:>10}  {share:5.1}%\n"));
        }
        if self.stopped {
            s.push_str("  stopped at the first bad row (--strict)\n");
        }
        s
    }
}

enum Sink {
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Json(Box<dyn Write>),
}

/// Writes chunks in the order they come, reports bad rows on stderr and
/// counts; with `strict`, stops before the first bad row.
fn write_all(
    output: Option<&Path>,
    kind: &Kind,
    fields: &[Field],
    names: &[String],
    strict: bool,
    progress: &Option<ProgressBar>,
    rx: Receiver<Vec<Done>>,
) -> anyhow::Result<Tally> {
    let mut raw: Box<dyn Write> = match output.filter(|p| !is_stdin(p)) {
        Some(p) => {
            Box::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut sink = match kind {
        Kind::Csv(plan) => {
            if plan.bom {
                // Kept so that spreadsheet programs still read the Arabic as UTF-8.
                raw.write_all(BOM)?;
            }
            let mut w = csv::WriterBuilder::new()
                .delimiter(plan.delimiter)
                .buffer_capacity(1 << 16)
                .from_writer(raw);
            if !plan.header.is_empty() {
                for col in &plan.header {
                    w.write_field(col).map_err(csv_error)?;
                }
                for f in fields {
                    w.write_field(f.column()).map_err(csv_error)?;
                }
                w.write_record(None::<&[u8]>).map_err(csv_error)?;
            }
            Sink::Csv(Box::new(w))
        }
        Kind::Json => Sink::Json(Box::new(io::BufWriter::with_capacity(1 << 16, raw))),
    };
    let width = match kind {
        Kind::Csv(plan) => plan.header.len(),
        Kind::Json => 0,
    };
    let report = |msg: String| match progress {
        Some(p) => p.suspend(|| eprintln!("{msg}")),
        None => eprintln!("{msg}"),
    };
    let mut tally = Tally::default();
    'chunks: for chunk in rx {
        let n = chunk.len() as u64;
        for done in chunk {
            if let Err(e) = &done.result {
                let msg = format!("mujib: {}:{}: {e}", names[done.file], done.line);
                if strict {
                    report(format!("{msg} (--strict: stopping)"));
                    tally.stopped = true;
                    break 'chunks;
                }
                report(msg);
            }
            tally.read += 1;
            match &done.result {
                Ok(b) => {
                    tally.labelled += 1;
                    tally.urgent += u64::from(b.urgent);
                    tally.needs_human += u64::from(b.needs_human);
                    match tally.labels.get_mut(&b.label) {
                        Some(c) => *c += 1,
                        None => {
                            tally.labels.insert(b.label.clone(), 1);
                        }
                    }
                }
                Err(_) => tally.errored += 1,
            }
            match (&mut sink, done.out) {
                (Sink::Csv(w), Out::Csv(rec, extra)) => {
                    // Short rows are padded and long ones cut to the header,
                    // so the output stays rectangular; the error says so.
                    for i in 0..width {
                        w.write_field(rec.get(i).unwrap_or_default())
                            .map_err(csv_error)?;
                    }
                    for v in &extra {
                        w.write_field(v).map_err(csv_error)?;
                    }
                    w.write_record(None::<&[u8]>).map_err(csv_error)?;
                }
                (Sink::Json(w), Out::Json(line)) => w.write_all(&line)?,
                _ => bail!("internal error: row and output formats differ"),
            }
        }
        if let Some(p) = progress {
            p.inc(n);
        }
    }
    match sink {
        Sink::Csv(mut w) => w.flush()?,
        Sink::Json(mut w) => w.flush()?,
    }
    Ok(tally)
}

/// Unwraps I/O errors so that `main` recognises a closed pipe.
fn csv_error(e: csv::Error) -> anyhow::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        other => anyhow::anyhow!("writing CSV: {other:?}"),
    }
}

/// A rows/s spinner on stderr, only when a person is watching it.
fn progress_bar() -> Option<ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed} {human_pos} rows, {per_sec:0}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
