//! Model file round trips, old-version fixture, typed errors on damaged
//! files, deterministic training, and golden expectations on the shipped model.

use std::path::{Path, PathBuf};

use mujib::{Classifier, Error, LabelledMessage, TrainParams, load_labelled};
use proptest::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small, fast training set: two files of the corpus, train split only.
fn small_data() -> Vec<LabelledMessage> {
    let mut v = Vec::new();
    for f in [
        "data/messages/native_en.jsonl",
        "data/messages/emirati_more.jsonl",
    ] {
        v.extend(load_labelled(&root().join(f)).unwrap().messages);
    }
    v.retain(|m| m.split.as_deref() == Some("train"));
    v
}

fn small_params() -> TrainParams {
    let mut p = TrainParams {
        folds: 0,
        ..Default::default()
    };
    p.features.max_features = 3000;
    p.ftrl_epochs = 5;
    p
}

fn train_small() -> Classifier {
    small_params()
        .check()
        .unwrap()
        .train(&small_data())
        .unwrap()
        .0
}

const PROBES: &[&str] = &[
    "how do i pay my traffic fine",
    "someone stole my car last night",
    "thank you so much for the quick help",
    "your app keeps crashing when I log in",
    "شكرا للدوريه على المساعده",
    "3ndi mo5alfa radar",
    "",
    "🙏",
];

#[test]
fn training_is_deterministic_for_a_seed() {
    let a = train_small();
    let b = train_small();
    for t in PROBES {
        let (pa, pb) = (a.classify(t), b.classify(t));
        assert_eq!(pa.label, pb.label, "{t}");
        assert_eq!(pa.scores, pb.scores, "{t}");
    }
}

#[test]
fn model_round_trips_through_bytes_and_files() {
    let clf = train_small();
    let mut bytes = Vec::new();
    clf.write(&mut bytes).unwrap();
    let back = Classifier::from_reader(&bytes[..]).unwrap();
    for t in PROBES {
        assert_eq!(clf.classify(t), back.classify(t), "{t}");
    }
    assert_eq!(back.metadata().n_train, clf.metadata().n_train);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.model");
    clf.save(&path).unwrap();
    let from_file = Classifier::load(&path).unwrap();
    assert_eq!(from_file.labels(), clf.labels());
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/v1.model")).unwrap()
}

#[test]
fn version_1_fixture_still_loads_and_predicts() {
    let clf = Classifier::from_reader(&model_bytes()[..]).unwrap();
    assert_eq!(clf.labels().len(), 5);
    // Written before the Arabizi rules had versions: it keeps the first.
    assert_eq!(clf.featurizer().config().arabizi_scheme, 1);
    let p = clf.classify("how do i pay my traffic fine");
    assert!(clf.labels().contains(&p.label));
    let sum: f32 = p.scores.iter().map(|s| s.score).sum();
    assert!((sum - 1.0).abs() < 1e-4);
}

#[test]
fn truncated_files_give_a_typed_error() {
    let bytes = model_bytes();
    for cut in [0, 5, 12, 30, bytes.len() / 2, bytes.len() - 1] {
        let err = Classifier::from_reader(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, Error::ModelFormat { .. } | Error::ModelCorrupt(_)),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn corrupt_and_newer_files_give_typed_errors() {
    let mut bytes = model_bytes();
    let mid = bytes.len() - 100;
    bytes[mid] ^= 0xff;
    let err = Classifier::from_reader(&bytes[..]).unwrap_err();
    assert!(
        matches!(err, Error::ModelCorrupt(ref m) if m.contains("checksum")),
        "{err}"
    );

    let mut newer = model_bytes();
    newer[8..12].copy_from_slice(&99u32.to_le_bytes());
    let err = Classifier::from_reader(&newer[..]).unwrap_err();
    assert!(
        matches!(err, Error::ModelVersion { found: 99, .. }),
        "{err}"
    );

    let err = Classifier::from_reader(&b"label,text\nx,y\n"[..]).unwrap_err();
    assert!(matches!(err, Error::ModelFormat { .. }), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let err = Classifier::load(Path::new("/no/such/model.bin")).unwrap_err();
    assert!(err.to_string().contains("/no/such/model.bin"), "{err}");
}

fn shipped() -> &'static Classifier {
    static CLF: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
    CLF.get_or_init(|| Classifier::load(root().join("models/mujib.model")).unwrap())
}

#[test]
fn shipped_model_golden_expectations() {
    let clf = shipped();
    let cases = [
        ("كم مخالفاتي المرورية وكيف ادفعها؟", "traffic"),
        (
            "my wallet was stolen in the metro, how do I file a police report",
            "criminal",
        ),
        ("شكرا شرطة دبي على سرعة الاستجابة 🙏", "thanks"),
        (
            "the app has been down for three days and nobody answers the phone",
            "service_complaint",
        ),
        (
            "what documents do I need to renew my emirates id",
            "general_inquiry",
        ),
        ("wain a7sal shahadat 7usn sulook?", "general_inquiry"),
    ];
    for (text, label) in cases {
        assert_eq!(clf.classify(text).label, label, "{text}");
    }
    let urgent = clf.classify("accident right now on E11, two people injured and bleeding, hurry");
    assert!(urgent.urgent, "{urgent:?}");
}

/// The shipped model on the corpus's held-out split (in-scope and
/// out-of-scope messages). At the time of writing it measures macro-F1
/// 0.895, urgent recall 0.973 and precision 0.83 (cut 0.154). The floors
/// sit a few messages below: a retrain that loses more than that, or a
/// threshold rule that trades the urgent flag's recall away, fails here.
#[test]
fn shipped_model_keeps_its_held_out_quality() {
    let mut test = Vec::new();
    for f in ["data/messages", "data/out_of_scope.jsonl"] {
        let loaded = mujib::load_labelled(&root().join(f)).unwrap();
        assert!(loaded.bad.is_empty(), "{f}: {:?}", loaded.bad);
        test.extend(
            loaded
                .messages
                .into_iter()
                .filter(|m| m.split.as_deref() == Some("test")),
        );
    }
    assert!(test.len() > 1500, "{}", test.len());
    let report = shipped().evaluate(&test);
    let urgent = report
        .urgent
        .expect("the test split has urgent annotations");
    assert!(report.macro_f1 >= 0.87, "macro-F1 {}", report.macro_f1);
    assert!(urgent.recall >= 0.96, "urgent recall {}", urgent.recall);
    assert!(
        urgent.precision >= 0.78,
        "urgent precision {}",
        urgent.precision
    );
}

#[test]
fn shipped_model_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Classifier>();
    let clf = shipped();
    std::thread::scope(|s| {
        for t in PROBES {
            s.spawn(move || clf.classify(t));
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn any_string_gets_a_valid_label(s in "\\PC{0,200}") {
        let clf = shipped();
        let p = clf.classify(&s);
        prop_assert!(clf.labels().contains(&p.label));
        let sum: f32 = p.scores.iter().map(|x| x.score).sum();
        prop_assert!((sum - 1.0).abs() < 1e-3);
        prop_assert!(p.confidence.is_finite());
    }
}
