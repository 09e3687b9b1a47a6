//! Validates the hand-written data under `data/`: the labelled corpus, the
//! out-of-scope set, the FAQ, the reply templates and the FAQ test set.
//!
//! Every check collects all its violations and reports them together, each
//! naming the file and 1-based line, so one run shows everything to fix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use mujib::Normalizer;
use serde_json::{Map, Value};

const LABELS: [&str; 5] = [
    "general_inquiry",
    "traffic",
    "criminal",
    "service_complaint",
    "thanks",
];
const OUT_OF_SCOPE_LABEL: &str = "other";
const URGENT_LABELS: [&str; 2] = ["traffic", "criminal"];
const LANGS: [&str; 6] = ["ar-msa", "ar-gulf", "ar-dialect", "en", "arabizi", "mixed"];
const CHANNELS: [&str; 6] = [
    "social",
    "dm",
    "web_form",
    "email",
    "call_note",
    "app_review",
];
const SPLITS: [&str; 2] = ["train", "test"];
const MESSAGE_FIELDS: [&str; 7] = ["id", "text", "label", "lang", "urgent", "channel", "split"];
const FAQ_FIELDS: [&str; 4] = ["id", "label", "questions", "answer"];
const FAQ_TEST_FIELDS: [&str; 4] = ["id", "text", "expected", "lang"];

const MIN_TOTAL: usize = 3500;
const MIN_PER_LABEL: usize = 650;
const MIN_URGENT: usize = 150;
const MIN_OUT_OF_SCOPE: usize = 300;
const TEST_SHARE: (f64, f64) = (0.15, 0.25);
const MIN_FAQ_ENTRIES: usize = 80;
const MIN_FAQ_QUESTIONS: usize = 4;
const MIN_FAQ_TEST_MATCHED: usize = 250;
const MIN_FAQ_TEST_UNMATCHED: usize = 50;
const MIN_FAQ_CALIBRATION_MATCHED: usize = 150;
const MIN_FAQ_CALIBRATION_UNMATCHED: usize = 100;

// ---------------------------------------------------------------- loading

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `data/...` relative path, used in every error message.
fn display(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", display(path)))
}

/// One JSONL line that parsed as a JSON object.
struct Line {
    /// `data/file.jsonl:LINE`
    at: String,
    obj: Map<String, Value>,
}

/// Parses a JSONL file. Lines that are not JSON objects go to `errors`.
fn load_jsonl(path: &Path, errors: &mut Vec<String>) -> Vec<Line> {
    let name = display(path);
    let mut out = Vec::new();
    for (i, raw) in read(path).lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        if raw.trim().is_empty() {
            errors.push(format!("{at}: blank line"));
            continue;
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(obj)) => out.push(Line { at, obj }),
            Ok(other) => errors.push(format!("{at}: not a JSON object: {other}")),
            Err(e) => errors.push(format!("{at}: invalid JSON: {e}")),
        }
    }
    out
}

fn check_fields(line: &Line, expected: &[&str], errors: &mut Vec<String>) {
    let have: HashSet<&str> = line.obj.keys().map(String::as_str).collect();
    let want: HashSet<&str> = expected.iter().copied().collect();
    let mut missing: Vec<_> = want.difference(&have).copied().collect();
    let mut extra: Vec<_> = have.difference(&want).copied().collect();
    missing.sort_unstable();
    extra.sort_unstable();
    if !missing.is_empty() {
        errors.push(format!("{}: missing field(s) {missing:?}", line.at));
    }
    if !extra.is_empty() {
        errors.push(format!("{}: unexpected field(s) {extra:?}", line.at));
    }
}

fn str_field<'a>(line: &'a Line, key: &str, errors: &mut Vec<String>) -> Option<&'a str> {
    match line.obj.get(key) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            errors.push(format!(
                "{}: field {key:?} is not a string: {other}",
                line.at
            ));
            None
        }
        None => None, // reported by check_fields
    }
}

fn one_of(line: &Line, key: &str, value: &str, allowed: &[&str], errors: &mut Vec<String>) -> bool {
    let ok = allowed.contains(&value);
    if !ok {
        errors.push(format!(
            "{}: {key} {value:?} is not one of {allowed:?}",
            line.at
        ));
    }
    ok
}

/// A corpus row whose fields all have the right type and an allowed value.
#[derive(Debug, Clone)]
struct Message {
    at: String,
    id: String,
    text: String,
    label: String,
    lang: String,
    urgent: bool,
    channel: String,
    split: String,
}

struct Corpus {
    /// Rows of `data/messages/*.jsonl`.
    messages: Vec<Message>,
    /// Rows of `data/out_of_scope.jsonl`.
    out_of_scope: Vec<Message>,
    /// Per-line violations found while loading (parse, fields, values).
    errors: Vec<String>,
}

fn message_files() -> Vec<PathBuf> {
    let dir = root().join("data/messages");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: cannot list: {e}", display(&dir)))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no *.jsonl files", display(&dir));
    files
}

fn parse_message(line: &Line, labels: &[&str], errors: &mut Vec<String>) -> Option<Message> {
    let before = errors.len();
    check_fields(line, &MESSAGE_FIELDS, errors);
    let id = str_field(line, "id", errors);
    let text = str_field(line, "text", errors);
    let label = str_field(line, "label", errors);
    let lang = str_field(line, "lang", errors);
    let channel = str_field(line, "channel", errors);
    let split = str_field(line, "split", errors);
    let urgent = match line.obj.get("urgent") {
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            errors.push(format!(
                "{}: field \"urgent\" is not a bool: {other}",
                line.at
            ));
            None
        }
        None => None,
    };
    if let Some(id) = id
        && id.trim().is_empty()
    {
        errors.push(format!("{}: empty id", line.at));
    }
    if let Some(text) = text
        && text.trim().is_empty()
    {
        errors.push(format!("{}: empty text", line.at));
    }
    if let Some(v) = label {
        one_of(line, "label", v, labels, errors);
    }
    if let Some(v) = lang {
        one_of(line, "lang", v, &LANGS, errors);
    }
    if let Some(v) = channel {
        one_of(line, "channel", v, &CHANNELS, errors);
    }
    if let Some(v) = split {
        one_of(line, "split", v, &SPLITS, errors);
    }
    if let (Some(true), Some(label)) = (urgent, label)
        && !URGENT_LABELS.contains(&label)
    {
        errors.push(format!(
            "{}: urgent is true but label is {label:?} (only {URGENT_LABELS:?} may be urgent)",
            line.at
        ));
    }
    if errors.len() != before {
        return None;
    }
    Some(Message {
        at: line.at.clone(),
        id: id?.to_owned(),
        text: text?.to_owned(),
        label: label?.to_owned(),
        lang: lang?.to_owned(),
        urgent: urgent?,
        channel: channel?.to_owned(),
        split: split?.to_owned(),
    })
}

static CORPUS: LazyLock<Corpus> = LazyLock::new(|| {
    let mut errors = Vec::new();
    let mut messages = Vec::new();
    for file in message_files() {
        for line in load_jsonl(&file, &mut errors) {
            messages.extend(parse_message(&line, &LABELS, &mut errors));
        }
    }
    let mut out_of_scope = Vec::new();
    for line in load_jsonl(&root().join("data/out_of_scope.jsonl"), &mut errors) {
        out_of_scope.extend(parse_message(&line, &[OUT_OF_SCOPE_LABEL], &mut errors));
    }
    Corpus {
        messages,
        out_of_scope,
        errors,
    }
});

fn assert_no_violations(what: &str, errors: &[String]) {
    assert!(
        errors.is_empty(),
        "{what}: {} violation(s):\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
}

// ---------------------------------------------------------------- corpus

#[test]
fn corpus_lines_have_the_schema_and_allowed_values() {
    assert_no_violations("corpus schema", &CORPUS.errors);
}

#[test]
fn corpus_ids_are_unique_across_all_files() {
    let mut first: HashMap<&str, &str> = HashMap::new();
    let mut errors = Vec::new();
    for m in CORPUS.messages.iter().chain(&CORPUS.out_of_scope) {
        if let Some(prev) = first.insert(&m.id, &m.at) {
            errors.push(format!("{}: id {:?} already used at {prev}", m.at, m.id));
        }
    }
    assert_no_violations("duplicate ids", &errors);
}

#[test]
fn corpus_texts_are_unique_after_normalization() {
    let normalizer = Normalizer::default();
    let mut first: HashMap<String, &Message> = HashMap::new();
    let mut errors = Vec::new();
    for m in CORPUS.messages.iter().chain(&CORPUS.out_of_scope) {
        let key = normalizer.normalize(&m.text).into_owned();
        if key.is_empty() {
            errors.push(format!("{}: id {:?} normalizes to empty text", m.at, m.id));
            continue;
        }
        if let Some(prev) = first.get(&key) {
            errors.push(format!(
                "{}: id {:?} has the same normalized text as {} (id {:?}): {key:?}",
                m.at, m.id, prev.at, prev.id
            ));
        } else {
            first.insert(key, m);
        }
    }
    assert_no_violations("duplicate texts", &errors);
}

#[test]
fn corpus_meets_minimum_counts() {
    let messages = &CORPUS.messages;
    let mut errors = Vec::new();
    if messages.len() < MIN_TOTAL {
        errors.push(format!(
            "data/messages: {} labelled messages, need at least {MIN_TOTAL}",
            messages.len()
        ));
    }
    for label in LABELS {
        let n = messages.iter().filter(|m| m.label == label).count();
        if n < MIN_PER_LABEL {
            errors.push(format!(
                "data/messages: {n} messages labelled {label:?}, need at least {MIN_PER_LABEL}"
            ));
        }
    }
    let urgent = messages.iter().filter(|m| m.urgent).count();
    if urgent < MIN_URGENT {
        errors.push(format!(
            "data/messages: {urgent} urgent messages, need at least {MIN_URGENT}"
        ));
    }
    let oos = CORPUS.out_of_scope.len();
    if oos < MIN_OUT_OF_SCOPE {
        errors.push(format!(
            "data/out_of_scope.jsonl: {oos} messages, need at least {MIN_OUT_OF_SCOPE}"
        ));
    }
    assert_no_violations("corpus counts", &errors);
}

#[test]
fn corpus_test_split_is_15_to_25_percent_of_every_label() {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for m in &CORPUS.messages {
        let c = counts.entry(&m.label).or_default();
        c.0 += 1;
        if m.split == "test" {
            c.1 += 1;
        }
    }
    let (lo, hi) = TEST_SHARE;
    let mut errors = Vec::new();
    for label in LABELS {
        let (total, test) = counts.get(label).copied().unwrap_or_default();
        let share = if total == 0 {
            0.0
        } else {
            test as f64 / total as f64
        };
        if !(lo..=hi).contains(&share) {
            errors.push(format!(
                "data/messages: label {label:?} has {test}/{total} = {:.1}% in test, want {:.0}%..{:.0}%",
                share * 100.0,
                lo * 100.0,
                hi * 100.0
            ));
        }
    }
    assert_no_violations("test split", &errors);
}

#[test]
fn corpus_fields_are_used() {
    // Guards against a silently mis-parsed corpus: every lang and channel
    // field was read, and each file contributed rows.
    let langs: HashSet<&str> = CORPUS.messages.iter().map(|m| m.lang.as_str()).collect();
    let channels: HashSet<&str> = CORPUS.messages.iter().map(|m| m.channel.as_str()).collect();
    assert!(langs.len() > 1, "data/messages: only langs {langs:?}");
    assert!(
        channels.len() > 1,
        "data/messages: only channels {channels:?}"
    );
}

// ---------------------------------------------------------------- FAQ

/// Maximal runs of decimal digits (ASCII, Arabic-Indic, extended
/// Arabic-Indic) in `s`, as ASCII strings.
fn digit_runs(s: &str) -> Vec<String> {
    let to_ascii = |c: char| -> Option<char> {
        match c {
            '0'..='9' => Some(c),
            '\u{0660}'..='\u{0669}' => char::from_digit(c as u32 - 0x0660, 10),
            '\u{06F0}'..='\u{06F9}' => char::from_digit(c as u32 - 0x06F0, 10),
            _ => None,
        }
    };
    let mut runs = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        match to_ascii(c) {
            Some(d) => cur.push(d),
            None if !cur.is_empty() => runs.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

static URL: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)(?:[a-z][a-z0-9+.-]*://|\bwww\.)\S*|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:ae|com|org|net|gov|io|info)\b\S*",
    )
    .expect("static regex is valid")
});

fn load_faq(errors: &mut Vec<String>) -> Vec<Line> {
    load_jsonl(&root().join("data/faq.jsonl"), errors)
}

#[test]
fn faq_is_well_formed() {
    let mut errors = Vec::new();
    let lines = load_faq(&mut errors);
    if lines.len() < MIN_FAQ_ENTRIES {
        errors.push(format!(
            "data/faq.jsonl: {} entries, need at least {MIN_FAQ_ENTRIES}",
            lines.len()
        ));
    }
    let mut ids: HashMap<String, String> = HashMap::new();
    for line in &lines {
        check_fields(line, &FAQ_FIELDS, &mut errors);
        if let Some(id) = str_field(line, "id", &mut errors) {
            if id.trim().is_empty() {
                errors.push(format!("{}: empty id", line.at));
            } else if let Some(prev) = ids.insert(id.to_owned(), line.at.clone()) {
                errors.push(format!("{}: id {id:?} already used at {prev}", line.at));
            }
        }
        if let Some(label) = str_field(line, "label", &mut errors) {
            one_of(line, "label", label, &LABELS, &mut errors);
        }
        match line.obj.get("questions") {
            Some(Value::Array(qs)) => {
                if qs.len() < MIN_FAQ_QUESTIONS {
                    errors.push(format!(
                        "{}: {} questions, need at least {MIN_FAQ_QUESTIONS}",
                        line.at,
                        qs.len()
                    ));
                }
                let mut seen = HashSet::new();
                for (i, q) in qs.iter().enumerate() {
                    match q.as_str() {
                        Some(s) if s.trim().is_empty() => {
                            errors.push(format!("{}: question {i} is empty", line.at))
                        }
                        Some(s) if !seen.insert(s) => {
                            errors.push(format!("{}: question {i} repeats {s:?}", line.at))
                        }
                        Some(_) => {}
                        None => {
                            errors.push(format!("{}: question {i} is not a string: {q}", line.at))
                        }
                    }
                }
            }
            Some(other) => errors.push(format!(
                "{}: \"questions\" is not an array: {other}",
                line.at
            )),
            None => {}
        }
        match line.obj.get("answer") {
            Some(Value::Object(answer)) => {
                let mut keys: Vec<&str> = answer.keys().map(String::as_str).collect();
                keys.sort_unstable();
                if keys != ["ar", "en"] {
                    errors.push(format!(
                        "{}: answer has keys {keys:?}, want exactly [\"ar\", \"en\"]",
                        line.at
                    ));
                }
                for lang in ["ar", "en"] {
                    match answer.get(lang) {
                        Some(Value::String(text)) => {
                            check_answer_text(&line.at, lang, text, &mut errors)
                        }
                        Some(other) => errors.push(format!(
                            "{}: answer.{lang} is not a string: {other}",
                            line.at
                        )),
                        None => {}
                    }
                }
            }
            Some(other) => {
                errors.push(format!("{}: \"answer\" is not an object: {other}", line.at))
            }
            None => {}
        }
    }
    assert_no_violations("data/faq.jsonl", &errors);
}

/// FAQ answers are sent verbatim, so they must not carry fees, durations,
/// phone numbers or links that could go stale; only the emergency number.
fn check_answer_text(at: &str, lang: &str, text: &str, errors: &mut Vec<String>) {
    if text.trim().is_empty() {
        errors.push(format!("{at}: answer.{lang} is empty"));
    }
    for run in digit_runs(text) {
        if run != "999" {
            errors.push(format!(
                "{at}: answer.{lang} contains the number {run:?} (only 999 is allowed)"
            ));
        }
    }
    if let Some(m) = URL.find(text) {
        errors.push(format!(
            "{at}: answer.{lang} contains a URL {:?}",
            m.as_str()
        ));
    }
}

#[test]
fn faq_answer_checks_catch_numbers_and_urls() {
    let check = |text: &str| {
        let mut errors = Vec::new();
        check_answer_text("x", "en", text, &mut errors);
        errors.len()
    };
    assert_eq!(check("Call 999 now."), 0);
    assert_eq!(check("اتصل على ٩٩٩ فوراً"), 0);
    assert_eq!(check("The fee is 100 dirhams."), 1);
    assert_eq!(check("Call 9999."), 1);
    assert_eq!(check("الرسوم ١٠٠ درهم"), 1);
    assert_eq!(check("Visit https://example.gov"), 1);
    assert_eq!(check("Visit www.example.org"), 1);
    assert_eq!(check("See u.ae for details"), 1);
    assert_eq!(check("Apply in the official app, e.g. at a centre."), 0);
}

// ---------------------------------------------------------------- replies

#[test]
fn replies_cover_every_label_in_both_languages() {
    let path = root().join("data/replies.json");
    let name = display(&path);
    let value: Value = serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{name}: invalid JSON at line {}: {e}", e.line()));
    let mut errors = Vec::new();

    let bilingual =
        |at: &str, v: Option<&Value>, errors: &mut Vec<String>| -> Option<(String, String)> {
            let Some(obj) = v.and_then(Value::as_object) else {
                errors.push(format!("{name}: {at} is missing or not an object"));
                return None;
            };
            let mut texts = Vec::new();
            for lang in ["ar", "en"] {
                match obj.get(lang).and_then(Value::as_str) {
                    Some(s) if !s.trim().is_empty() => texts.push(s.to_owned()),
                    _ => errors.push(format!(
                        "{name}: {at}.{lang} is missing, empty or not a string"
                    )),
                }
            }
            let en = texts.pop()?;
            let ar = texts.pop()?;
            Some((ar, en))
        };

    let fallback = value.get("fallback");
    for label in LABELS {
        bilingual(
            &format!("fallback.{label}"),
            fallback.and_then(|f| f.get(label)),
            &mut errors,
        );
    }
    if let Some(prefix) = bilingual(
        "emergency_prefix",
        value.get("emergency_prefix"),
        &mut errors,
    ) {
        for (lang, text) in [("ar", &prefix.0), ("en", &prefix.1)] {
            if !text.contains("999") {
                errors.push(format!(
                    "{name}: emergency_prefix.{lang} does not contain 999"
                ));
            }
        }
    }
    bilingual("holding", value.get("holding"), &mut errors);
    assert_no_violations("data/replies.json", &errors);
}

// ---------------------------------------------------------------- FAQ test set

static NORMALIZER: LazyLock<Normalizer> = LazyLock::new(Normalizer::default);

/// Checks a file of FAQ cases (`id`, `text`, `expected`, `lang`) against
/// the FAQ's ids and minimum counts; returns the texts, normalized.
fn check_faq_cases(
    file: &str,
    min_matched: usize,
    min_unmatched: usize,
    errors: &mut Vec<String>,
) -> Vec<String> {
    let mut faq_errors = Vec::new();
    let faq_ids: HashSet<String> = load_faq(&mut faq_errors)
        .iter()
        .filter_map(|l| l.obj.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert!(
        !faq_ids.is_empty(),
        "data/faq.jsonl: no ids ({faq_errors:?})"
    );

    let lines = load_jsonl(&root().join(file), errors);
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut texts = Vec::new();
    let (mut matched, mut unmatched) = (0, 0);
    for line in &lines {
        check_fields(line, &FAQ_TEST_FIELDS, errors);
        if let Some(id) = str_field(line, "id", errors) {
            if id.trim().is_empty() {
                errors.push(format!("{}: empty id", line.at));
            } else if let Some(prev) = ids.insert(id.to_owned(), line.at.clone()) {
                errors.push(format!("{}: id {id:?} already used at {prev}", line.at));
            }
        }
        if let Some(text) = str_field(line, "text", errors) {
            if text.trim().is_empty() {
                errors.push(format!("{}: empty text", line.at));
            }
            texts.push(NORMALIZER.normalize(text).into_owned());
        }
        if let Some(lang) = str_field(line, "lang", errors) {
            one_of(line, "lang", lang, &LANGS, errors);
        }
        match line.obj.get("expected") {
            Some(Value::Null) => unmatched += 1,
            Some(Value::String(id)) if faq_ids.contains(id) => matched += 1,
            Some(Value::String(id)) => errors.push(format!(
                "{}: expected {id:?} is not an id in data/faq.jsonl",
                line.at
            )),
            Some(other) => errors.push(format!(
                "{}: expected is neither a string nor null: {other}",
                line.at
            )),
            None => {}
        }
    }
    if matched < min_matched {
        errors.push(format!(
            "{file}: {matched} rows expect a FAQ entry, need at least {min_matched}"
        ));
    }
    if unmatched < min_unmatched {
        errors.push(format!(
            "{file}: {unmatched} rows expect no FAQ entry (null), need at least {min_unmatched}"
        ));
    }
    texts
}

#[test]
fn faq_test_set_is_well_formed() {
    let mut errors = Vec::new();
    check_faq_cases(
        "data/faq_test.jsonl",
        MIN_FAQ_TEST_MATCHED,
        MIN_FAQ_TEST_UNMATCHED,
        &mut errors,
    );
    assert_no_violations("data/faq_test.jsonl", &errors);
}

/// The calibration set teaches the no-match rule; it must be large enough
/// to learn from, and share no message with the test set it is judged on.
/// The held-back neighbour set (see `data/README.md`) obeys the same rules,
/// so it can be swapped in.
#[test]
fn faq_calibration_sets_are_well_formed_and_apart_from_the_test_set() {
    let test: HashSet<String> = check_faq_cases("data/faq_test.jsonl", 0, 0, &mut Vec::new())
        .into_iter()
        .collect();
    for (path, matched, unmatched) in [
        (
            "data/faq_calibration.jsonl",
            MIN_FAQ_CALIBRATION_MATCHED,
            MIN_FAQ_CALIBRATION_UNMATCHED,
        ),
        ("data/faq_calibration_neighbours.jsonl", 150, 150),
    ] {
        let mut errors = Vec::new();
        let calibration = check_faq_cases(path, matched, unmatched, &mut errors);
        for (i, t) in calibration.iter().enumerate() {
            if test.contains(t) {
                errors.push(format!(
                    "{path}: case {} is also in data/faq_test.jsonl",
                    i + 1
                ));
            }
        }
        assert_no_violations(path, &errors);
    }
}

/// The FAQ test and calibration messages are paraphrases, not copies of
/// the FAQ's phrasings (a copy would score itself and tell nothing), and
/// no phrasing is repeated, within an entry or across two. Compared once
/// normalized, so a copy with other diacritics or spacing counts too.
#[test]
fn faq_phrasings_are_unique_and_no_case_copies_one() {
    let mut errors = Vec::new();
    let mut phrasings: HashMap<String, String> = HashMap::new();
    for line in load_faq(&mut errors) {
        let Some(Value::Array(questions)) = line.obj.get("questions") else {
            continue;
        };
        for q in questions.iter().filter_map(Value::as_str) {
            let key = NORMALIZER.normalize(q).trim().to_string();
            if let Some(prev) = phrasings.insert(key, line.at.clone()) {
                errors.push(format!("{}: phrasing {q:?} repeats one at {prev}", line.at));
            }
        }
    }
    for file in [
        "data/faq_test.jsonl",
        "data/faq_calibration.jsonl",
        "data/faq_calibration_neighbours.jsonl",
    ] {
        for line in load_jsonl(&root().join(file), &mut errors) {
            let Some(text) = line.obj.get("text").and_then(Value::as_str) else {
                continue;
            };
            if let Some(at) = phrasings.get(NORMALIZER.normalize(text).trim()) {
                errors.push(format!("{}: copies the FAQ phrasing at {at}", line.at));
            }
        }
    }
    assert!(phrasings.len() >= 80 * 4, "{} phrasings", phrasings.len());
    assert_no_violations("data/faq.jsonl", &errors);
}
