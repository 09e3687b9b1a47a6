//! Throughput of each pipeline stage and of the whole responder, on real
//! messages from the corpus's test split (a realistic mix of Gulf, MSA,
//! dialect, English, Arabizi and mixed text with its noise).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mujib::{Bilingual, Classifier, FaqEntry, FaqIndex, Responder, load_labelled};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn messages() -> Vec<String> {
    let loaded = load_labelled(&root().join("data/messages")).expect("corpus");
    loaded
        .messages
        .into_iter()
        .filter(|m| m.split.as_deref() == Some("test"))
        .map(|m| m.text)
        .collect()
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let n = msgs.len() as u64;

    let clf = Classifier::load(root().join("models/mujib.model")).expect("shipped model");
    let normalized: Vec<String> = msgs
        .iter()
        .map(|m| clf.normalizer().normalize(m).into_owned())
        .collect();
    let tok = clf
        .featurizer()
        .tokenizer()
        .expect("model has a tokenizer")
        .clone();

    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(n));
    g.bench_function("tokenize", |b| {
        b.iter(|| {
            for m in &normalized {
                black_box(tok.tokenize(m));
            }
        })
    });
    g.bench_function("featurize", |b| {
        b.iter(|| {
            for m in &normalized {
                black_box(clf.featurizer().featurize(m));
            }
        })
    });
    // The target: normalize + tokenize + featurize + predict.
    g.bench_function("predict_end_to_end", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(clf.predict(m));
            }
        })
    });
    // The same plus the explanation (what `mujib classify` prints).
    g.bench_function("classify_end_to_end", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(clf.classify(m));
            }
        })
    });
    g.finish();

    // As the CLI loads it.
    let responder = Responder::load_calibrated(
        root().join("models/mujib.model"),
        root().join("data/faq.jsonl"),
        root().join("data/replies.json"),
        root().join("data/faq_calibration.jsonl"),
    )
    .expect("responder");
    let mut g = c.benchmark_group("respond");
    g.throughput(Throughput::Elements(n));
    g.bench_function("shipped_faq", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(responder.respond(m));
            }
        })
    });
    g.finish();

    // FAQ matching alone with 5,000 entries, for timing only. The real
    // entries are kept; the others get 12 phrasings each, every one glued
    // from the first half of one corpus message and the second half of
    // another, so the index has the word and n-gram spread of real text
    // rather than 50 copies of the same 95 entries.
    let pool: Vec<String> = load_labelled(&root().join("data/messages"))
        .expect("corpus")
        .messages
        .into_iter()
        .map(|m| m.text)
        .collect();
    let halves: Vec<(String, String)> = pool
        .iter()
        .map(|t| {
            let w: Vec<&str> = t.split_whitespace().collect();
            let mid = w.len() / 2;
            (w[..mid].join(" "), w[mid..].join(" "))
        })
        .collect();
    let faq: Vec<FaqEntry> = responder.faq().entries().to_vec();
    let mut big = faq.clone();
    let mut k = 0usize;
    while big.len() < 5000 {
        let base = &faq[k % faq.len()];
        let questions: Vec<String> = (0..12)
            .map(|i| {
                let a = (k * 12 + i) % halves.len();
                let b = (k * 7 + i * 131 + 17) % halves.len();
                format!("{} {}", halves[a].0, halves[b].1)
            })
            .collect();
        big.push(FaqEntry {
            id: format!("synthetic.{k}"),
            label: base.label.clone(),
            questions,
            answer: Bilingual {
                ar: String::new(),
                en: String::new(),
            },
        });
        k += 1;
    }
    let index = FaqIndex::new(big, clf.normalizer()).expect("index");
    let mut g = c.benchmark_group("faq");
    g.throughput(Throughput::Elements(n));
    g.bench_function("match_5000_entries", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(index.best(m, &[]));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
