//! The `mujib` binary run as a real process on real files.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mujib(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mujib"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that fails before reading stdin (a bad --config) closes
    // the pipe; that is its behaviour under test, not a test failure.
    let _ = input.write_all(stdin.unwrap_or(b""));
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn normalize_a_file_keeps_line_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    std::fs::write(&path, "شكــــراااا  جزيلاً ﻻ ١٢٣ @DubaiPoliceHQ\n\nPLEASE   help #اليوم_الوطني\r\nlast line no newline").unwrap();
    let o = mujib(&["normalize", path.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o),
        "شكرا جزيلا لا 123 <user>\n\nplease help اليوم الوطني\nlast line no newline\n"
    );
}

#[test]
fn normalize_reports_invalid_utf8_with_its_line_and_keeps_the_row() {
    let o = mujib(&["normalize"], Some(b"ok\n\xff\xfe bad\nfine\n"));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).lines().count(), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("<stdin>:2: invalid UTF-8"));
}

#[test]
fn normalize_config_switches_rules() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("n.json");
    std::fs::write(&cfg, r#"{"hamza_seats": true, "lowercase": false}"#).unwrap();
    let o = mujib(
        &["normalize", "--config", cfg.to_str().unwrap()],
        Some("مسؤول ABC\n".as_bytes()),
    );
    assert_eq!(stdout(&o), "مسوول ABC\n");
    std::fs::write(&cfg, r#"{"no_such_rule": true}"#).unwrap();
    let o = mujib(
        &["normalize", "--config", cfg.to_str().unwrap()],
        Some(b"x\n"),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no_such_rule"));
}

#[test]
fn classify_and_respond_json() {
    let o = mujib(&["classify", "--json", "كيف ادفع مخالفة الرادار"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["label"], "traffic");
    assert!(v["scores"].as_array().unwrap().len() >= 3);

    let o = mujib(&["respond", "--json"], Some("there is an accident now and a man is bleeding on the road\nhow do I renew my emirates ID?\n".as_bytes()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["urgent"], true);
    assert!(lines[0]["reply"].as_str().unwrap().contains("999"));
    assert_eq!(lines[1]["language"], "english");
    for key in [
        "label",
        "confidence",
        "top3",
        "urgent",
        "language",
        "faq_id",
        "faq_score",
        "reply",
        "needs_human",
    ] {
        assert!(lines[1].get(key).is_some(), "missing {key}");
    }
}

#[test]
fn missing_model_is_a_clear_error() {
    let o = mujib(&["classify", "--model", "/nope/m.model", "hi"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nope/m.model"));
}

#[test]
fn train_reports_bad_lines_and_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    let mut text = std::fs::read_to_string(root().join("data/messages/native_en.jsonl")).unwrap();
    text.push_str("{\"text\": \"broken\n");
    std::fs::write(&data, &text).unwrap();
    let model = dir.path().join("m.model");
    let args = [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--folds",
        "0",
        "--max-features",
        "2000",
    ];
    let o = mujib(&args, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("d.jsonl:441"), "{err}");
    assert!(model.exists() && dir.path().join("m.model.report.json").exists());
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("m.model.report.json")).unwrap(),
    )
    .unwrap();
    assert!(report["test"]["macro_f1"].as_f64().unwrap() > 0.5);

    let mut strict = args.to_vec();
    strict.push("--strict");
    let o = mujib(&strict, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("d.jsonl:441"));

    let o = mujib(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--split",
            "test",
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["accuracy"].as_f64().unwrap() > 0.5);
}

#[test]
fn train_rejects_an_urgent_recall_out_of_range_before_reading_data() {
    let o = mujib(
        &[
            "train",
            "--data",
            "data/messages",
            "--urgent-recall",
            "1.5",
            "--out",
            "/nonexistent/m.model",
        ],
        None,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("urgent_recall") && err.contains("0.5..=1.0"),
        "{err}"
    );
}
