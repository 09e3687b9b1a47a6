//! `mujib label` run as a real process on real files in a temp dir: CSV and
//! JSONL, bad rows, stdin and stdout, order and thread-count invariance
//! (issue 6).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

const TRAFFIC: &str = "السلام عليكم كيف ادفع المخالفات المرورية؟";
const URGENT: &str = "حادث الحين على شارع الامارات وفي ناس مصابين تعالوا بسرعه";
const THANKS: &str = "thank you so much for your quick help really appreciated";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `mujib label` with the shipped model, FAQ and replies given as absolute
/// paths, run in `dir` so that nothing depends on the working directory.
fn label(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mujib"));
    c.current_dir(dir)
        .env_remove("MUJIB_MODEL")
        .env_remove("MUJIB_FAQ")
        .env_remove("MUJIB_REPLIES")
        .arg("label")
        .arg("--model")
        .arg(root().join("models/mujib.model"))
        .arg("--faq")
        .arg(root().join("data/faq.jsonl"))
        .arg("--replies")
        .arg(root().join("data/replies.json"));
    c
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("mujib runs");
    // Shown when a test fails.
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn run_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mujib starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("mujib runs");
    // A run that stops early (a missing column, --strict) may close stdin
    // before it is all written; that broken pipe is expected, not a failure.
    let _ = feeder.join().expect("feeder");
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).expect("write input");
    p
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Output CSV as header and rows (strings), BOM stripped.
fn parse_csv(bytes: &[u8], delimiter: u8) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(bytes);
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| {
            rec.expect("output row parses")
                .iter()
                .map(String::from)
                .collect()
        })
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .expect("output is UTF-8")
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("output line {l:?} is not JSON: {e}"))
        })
        .collect()
}

/// Every message text in the corpus, newlines and all.
fn corpus_texts() -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("data/messages"))
        .expect("data/messages")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let mut texts = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(&f).expect("read corpus").lines() {
            if let Some(t) = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["text"].as_str().map(String::from))
            {
                texts.push(t);
            }
        }
    }
    assert!(texts.len() > 1000);
    texts
}

fn big_csv(rows: usize) -> Vec<u8> {
    let texts = corpus_texts();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "channel", "text"]).expect("header");
    for i in 0..rows {
        w.write_record([i.to_string().as_str(), "web", &texts[i % texts.len()]])
            .expect("row");
    }
    w.into_inner().expect("csv bytes")
}

#[test]
fn csv_with_bom_and_quoted_multiline_fields() {
    let dir = TempDir::new().unwrap();
    let multiline = format!("{URGENT}\nثاني سطر, فيه \"اقتباس\"");
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend_from_slice(
        format!(
            "id,text,channel\n1,{TRAFFIC},web\n2,\"{}\",dm\n3,{THANKS},email\n",
            multiline.replace('"', "\"\"")
        )
        .as_bytes(),
    );
    let path = write(&dir, "export.csv", &input);
    let out = run(label(dir.path()).arg(&path));
    assert_eq!(out.status.code(), Some(0));
    // The BOM is kept so that spreadsheets still read the Arabic as UTF-8.
    assert!(
        out.stdout
            .starts_with(b"\xEF\xBB\xBFid,text,channel,mujib_label,")
    );
    let (header, rows) = parse_csv(&out.stdout, b',');
    assert_eq!(
        header,
        [
            "id",
            "text",
            "channel",
            "mujib_label",
            "mujib_confidence",
            "mujib_urgent",
            "mujib_language",
            "mujib_needs_human",
            "mujib_faq_id",
            "mujib_reply",
            "mujib_error"
        ]
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][..3], ["1", TRAFFIC, "web"]);
    assert_eq!(rows[1][..3], ["2", multiline.as_str(), "dm"]);
    let (lbl, urgent, err) = (
        column(&header, "mujib_label"),
        column(&header, "mujib_urgent"),
        column(&header, "mujib_error"),
    );
    assert_eq!(rows[0][lbl], "traffic");
    assert_eq!(rows[1][urgent], "true");
    assert!(rows[1][column(&header, "mujib_reply")].contains("999"));
    assert_eq!(rows[2][lbl], "thanks");
    assert!(rows.iter().all(|r| r[err].is_empty()));
    let confidence: f32 = rows[0][column(&header, "mujib_confidence")]
        .parse()
        .unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    let summary = stderr(&out);
    assert!(
        summary.contains("3 rows read, 3 labelled, 0 errored; 1 urgent"),
        "{summary}"
    );
}

#[test]
fn csv_delimiter_is_sniffed_or_given() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "semi.csv",
        format!("id;Message;note\n1;{THANKS};a, b\n").as_bytes(),
    );
    let out = run(label(dir.path()).arg(&path));
    assert_eq!(out.status.code(), Some(0));
    let (header, rows) = parse_csv(&out.stdout, b';');
    assert_eq!(header[..4], ["id", "Message", "note", "mujib_label"]);
    assert_eq!(rows[0][..4], ["1", THANKS, "a, b", "thanks"]);

    let path = write(
        &dir,
        "pipes.txt",
        format!("id|body\n1|{TRAFFIC}\n").as_bytes(),
    );
    let out = run(label(dir.path())
        .args(["--format", "csv", "--delimiter", "|"])
        .arg(&path));
    assert_eq!(out.status.code(), Some(0));
    let (_, rows) = parse_csv(&out.stdout, b'|');
    assert_eq!(rows[0][..3], ["1", TRAFFIC, "traffic"]);
}

#[test]
fn jsonl_with_a_broken_line_keeps_every_row() {
    let dir = TempDir::new().unwrap();
    let input = format!(
        "{{\"zid\": 1, \"text\": \"{TRAFFIC}\", \"meta\": {{\"a\": 1}}}}\n\
         {{\"zid\": 2, \"text\": \"unterminated\n\
         \n\
         {{\"zid\": 3, \"text\": \"{THANKS}\"}}\r\n"
    );
    let path = write(&dir, "tweets.jsonl", input.as_bytes());
    let out = run(label(dir.path()).arg(&path));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad row makes the exit code 1"
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    // The input object is kept byte for byte, field order included.
    assert!(text.starts_with(&format!(
        "{{\"zid\": 1, \"text\": \"{TRAFFIC}\", \"meta\": {{\"a\": 1}},\"mujib_label\":\"traffic\""
    )));
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["mujib_label"], "traffic");
    assert_eq!(rows[0]["mujib_error"], Value::Null);
    assert_eq!(
        rows[1]["mujib_input"],
        "{\"zid\": 2, \"text\": \"unterminated"
    );
    assert!(
        rows[1]["mujib_error"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    assert_eq!(rows[1]["mujib_label"], Value::Null);
    assert_eq!(rows[2]["zid"], 3);
    assert_eq!(rows[2]["mujib_label"], "thanks");
    let err = stderr(&out);
    assert!(err.contains("tweets.jsonl:2: malformed JSON"), "{err}");
    assert!(err.contains("3 rows read, 2 labelled, 1 errored"), "{err}");
}

#[test]
fn jsonl_dotted_text_field_and_chosen_fields() {
    let dir = TempDir::new().unwrap();
    let input = format!("{{\"id\":\"a\",\"message\":{{\"body\":\"{URGENT}\",\"lang\":\"ar\"}}}}\n");
    let path = write(&dir, "crm.ndjson", input.as_bytes());
    let out = run(label(dir.path())
        .args([
            "--text-field",
            "message.body",
            "--fields",
            "label,top3,urgent",
        ])
        .arg(&path));
    assert_eq!(out.status.code(), Some(0));
    let rows = json_lines(&out.stdout);
    let keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "id",
        "message",
        "mujib_label",
        "mujib_top3",
        "mujib_urgent",
        "mujib_error",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(rows[0]["mujib_urgent"], true);
    assert_eq!(rows[0]["mujib_top3"].as_array().unwrap().len(), 3);
    assert_eq!(rows[0]["mujib_top3"][0]["label"], rows[0]["mujib_label"]);
}

#[test]
fn stdin_to_stdout() {
    let dir = TempDir::new().unwrap();
    let csv = format!("id,text\n1,{TRAFFIC}\n2,{THANKS}\n");
    for args in [&[][..], &["-"][..]] {
        let out = run_stdin(label(dir.path()).args(args), csv.as_bytes());
        assert_eq!(out.status.code(), Some(0));
        let (header, rows) = parse_csv(&out.stdout, b',');
        assert_eq!(header[2], "mujib_label");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0][2].as_str(), rows[1][2].as_str()),
            ("traffic", "thanks")
        );
    }
    // JSONL is recognised from its first byte.
    let jsonl = format!("{{\"text\":\"{THANKS}\"}}\n");
    let out = run_stdin(&mut label(dir.path()), jsonl.as_bytes());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out.stdout)[0]["mujib_label"], "thanks");
}

#[test]
fn missing_text_column_lists_the_columns() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "export.csv",
        format!("ticket,msg,channel\n1,{THANKS},web\n").as_bytes(),
    );
    let out = run(label(dir.path()).arg(&path));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("none of the columns text, message, body, content, tweet"),
        "{err}"
    );
    assert!(err.contains("ticket, msg, channel"), "{err}");
    assert!(out.stdout.is_empty());

    let out = run(label(dir.path())
        .args(["--text-column", "message"])
        .arg(&path));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no column `message`; its columns are: ticket, msg, channel"));

    let out = run(label(dir.path()).args(["--text-column", "msg"]).arg(&path));
    assert_eq!(out.status.code(), Some(0));

    let path = write(
        &dir,
        "x.jsonl",
        b"{\"id\":1,\"payload\":{\"txt\":\"hi\"}}\n",
    );
    let out = run(label(dir.path()).arg(&path));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("its fields are: id, payload.txt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ten_thousand_rows_in_order_and_the_same_with_one_or_two_threads() {
    let dir = TempDir::new().unwrap();
    let n = 10_000;
    let path = write(&dir, "big.csv", &big_csv(n));
    let one = run(label(dir.path()).args(["--threads", "1"]).arg(&path));
    let two = run(label(dir.path()).args(["--threads", "2"]).arg(&path));
    assert_eq!(one.status.code(), Some(0));
    assert_eq!(two.status.code(), Some(0));
    assert!(
        one.stdout == two.stdout,
        "--threads 1 and --threads 2 differ"
    );
    let (header, rows) = parse_csv(&one.stdout, b',');
    assert_eq!(rows.len(), n);
    let texts = corpus_texts();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], i.to_string(), "row {i} out of order");
        assert_eq!(row[2], texts[i % texts.len()]);
    }
    let lbl = column(&header, "mujib_label");
    assert!(rows.iter().all(|r| !r[lbl].is_empty()));
    assert!(stderr(&one).contains(&format!("{n} rows read, {n} labelled, 0 errored")));
}

#[test]
fn bad_csv_rows_are_written_with_an_error() {
    let dir = TempDir::new().unwrap();
    let mut input = format!("id,text,note\n1,{TRAFFIC},ok\n2,,empty\n3,caf").into_bytes();
    input.extend_from_slice(b"\xFF\xFE,not utf-8 \xC3\n");
    input
        .extend_from_slice(format!("4,{THANKS}\n5,{THANKS},x,extra\n6,{THANKS},last\n").as_bytes());
    let path = write(&dir, "bad.csv", &input);
    let out = run(label(dir.path()).arg(&path));
    assert_eq!(out.status.code(), Some(1));
    // The invalid bytes in the other column pass through untouched.
    assert!(out.stdout.windows(12).any(|w| w == b"not utf-8 \xC3,"));
    let mut r = csv::ReaderBuilder::new().from_reader(&out.stdout[..]);
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::ByteRecord> = r.byte_records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6, "rows in = rows out");
    let (lbl, err) = (
        column(&header, "mujib_label"),
        column(&header, "mujib_error"),
    );
    let error = |i: usize| String::from_utf8_lossy(&rows[i][err]).into_owned();
    assert_eq!(&rows[0][lbl], b"traffic");
    assert_eq!(error(0), "");
    assert_eq!(error(1), "empty text in column `text`");
    assert!(
        error(2).starts_with("invalid UTF-8 in column `text`"),
        "{}",
        error(2)
    );
    assert_eq!(&rows[2][1], b"caf\xFF\xFE");
    assert_eq!(error(3), "2 fields where the header has 3");
    assert_eq!(&rows[3][2], b"", "a short row is padded");
    assert!(error(4).starts_with("4 fields where the header has 3"));
    assert!(
        error(4).contains("extra"),
        "the dropped field is kept in the error"
    );
    assert_eq!(&rows[5][lbl], b"thanks");
    assert!(rows[1..5].iter().all(|r| r[lbl].is_empty()));
    let err = stderr(&out);
    for line in [
        "bad.csv:3: empty text",
        "bad.csv:4: invalid UTF-8",
        "bad.csv:5: 2 fields",
        "bad.csv:6: 4 fields",
    ] {
        assert!(err.contains(line), "{line} missing from\n{err}");
    }
    assert!(err.contains("6 rows read, 2 labelled, 4 errored"), "{err}");
}

#[test]
fn strict_stops_at_the_first_bad_row() {
    let dir = TempDir::new().unwrap();
    let input = format!("id,text\n1,{TRAFFIC}\n2,\n3,{THANKS}\n");
    let path = write(&dir, "s.csv", input.as_bytes());
    let out = run(label(dir.path()).arg("--strict").arg(&path));
    assert_eq!(out.status.code(), Some(2));
    let (_, rows) = parse_csv(&out.stdout, b',');
    assert_eq!(rows.len(), 1, "only the rows before the bad one");
    assert!(stderr(&out).contains("s.csv:3: empty text"));

    let path = write(
        &dir,
        "s.jsonl",
        b"{\"text\":\"hi\"}\nnot json\n{\"text\":\"x\"}\n",
    );
    let out = run(label(dir.path()).arg("--strict").arg(&path));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_lines(&out.stdout).len(), 1);
}

#[test]
fn several_inputs_go_into_one_output() {
    let dir = TempDir::new().unwrap();
    let a = write(&dir, "a.csv", format!("id,text\n1,{TRAFFIC}\n").as_bytes());
    let b = write(
        &dir,
        "b.csv",
        format!("\u{FEFF}id,text\n2,{THANKS}\n").as_bytes(),
    );
    let out_path = dir.path().join("out.csv");
    let out = run(label(dir.path()).arg(&a).arg(&b).arg("-o").arg(&out_path));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let (header, rows) = parse_csv(&std::fs::read(&out_path).unwrap(), b',');
    assert_eq!(header[..3], ["id", "text", "mujib_label"]);
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );

    let c = write(&dir, "c.csv", format!("id,body\n3,{THANKS}\n").as_bytes());
    let out = run(label(dir.path()).arg(&a).arg(&c));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has other columns than"),
        "{}",
        stderr(&out)
    );

    let out = run(label(dir.path()).arg(&a).arg("-o").arg(&a));
    assert_eq!(out.status.code(), Some(2), "never overwrite an input");
}

#[test]
fn model_and_faq_from_the_environment() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "e.csv", format!("text\n{TRAFFIC}\n").as_bytes());
    let out = run(Command::new(env!("CARGO_BIN_EXE_mujib"))
        .current_dir(dir.path())
        .env("MUJIB_MODEL", root().join("models/mujib.model"))
        .env("MUJIB_FAQ", root().join("data/faq.jsonl"))
        .env("MUJIB_REPLIES", root().join("data/replies.json"))
        .arg("label")
        .arg(&path));
    assert_eq!(out.status.code(), Some(0));
    let (_, rows) = parse_csv(&out.stdout, b',');
    assert_eq!(rows[0][1], "traffic");
}
