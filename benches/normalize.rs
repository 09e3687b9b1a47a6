//! Normalizer throughput in bytes/s on the corpus's test split: short Gulf,
//! MSA, dialect, English, Arabizi and mixed messages with real noise
//! (tatweel, elongation, diacritics, emoji, mentions, hashtags, URLs).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mujib::{Normalizer, load_labelled};

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let msgs: Vec<String> = load_labelled(&root.join("data/messages"))
        .expect("corpus")
        .messages
        .into_iter()
        .map(|m| m.text)
        .collect();
    let bytes: usize = msgs.iter().map(String::len).sum();
    let normalizer = Normalizer::default();
    let normalized: Vec<String> = msgs
        .iter()
        .map(|m| normalizer.normalize(m).into_owned())
        .collect();

    let mut g = c.benchmark_group("normalize");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("raw_messages", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(normalizer.normalize(m));
            }
        })
    });
    let nbytes: usize = normalized.iter().map(String::len).sum();
    g.throughput(Throughput::Bytes(nbytes as u64));
    g.bench_function("already_normalized", |b| {
        b.iter(|| {
            for m in &normalized {
                black_box(normalizer.normalize(m));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
