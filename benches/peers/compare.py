#!/usr/bin/env python3
"""Peer comparison for mujib: scikit-learn TF-IDF + LinearSVC and fastText.

Loads every line of <data-dir>/*.jsonl (default: data/messages, NOT
data/out_of_scope.jsonl), trains on split == "train", evaluates on
split == "test", prints a table and writes results.json next to this file.

Metrics follow mujib's own definitions (src/classify/metrics.rs): macro-F1 is
the mean F1 over the labels that occur as gold or prediction in the evaluated
subset (sklearn's default label set, with zero_division=0), also per lang.

Run:  /tmp/peers/bin/python benches/peers/compare.py [--data-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SEED = 42


# ---------------------------------------------------------------- data

def load(data_dir: str):
    files = sorted(glob.glob(os.path.join(data_dir, "*.jsonl")))
    if not files:
        sys.exit(f"no .jsonl files in {data_dir}")
    rows, bad = [], 0
    for path in files:
        with open(path, encoding="utf-8-sig") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                    if not isinstance(r.get("text"), str) or not isinstance(r.get("label"), str):
                        raise ValueError("missing text/label")
                except (json.JSONDecodeError, ValueError) as e:
                    bad += 1
                    print(f"warning: {path}:{n}: skipped ({e})", file=sys.stderr)
                    continue
                rows.append(r)
    train = [r for r in rows if r.get("split") == "train"]
    test = [r for r in rows if r.get("split") == "test"]
    return files, train, test, bad


def clean(text: str) -> str:
    """Lowercase and collapse all whitespace (incl. newlines) to single spaces."""
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- metrics

def evaluate(gold, pred, langs, labels):
    out = {
        "n": len(gold),
        "accuracy": accuracy_score(gold, pred),
        "macro_f1": f1_score(gold, pred, average="macro", zero_division=0),
        "per_label_f1": dict(zip(labels, f1_score(gold, pred, labels=labels, average=None, zero_division=0).tolist())),
    }
    by_lang = {}
    for lang in sorted(set(langs)):
        idx = [i for i, l in enumerate(langs) if l == lang]
        g = [gold[i] for i in idx]
        p = [pred[i] for i in idx]
        by_lang[lang] = {
            "n": len(idx),
            "accuracy": accuracy_score(g, p),
            "macro_f1": f1_score(g, p, average="macro", zero_division=0),
        }
    out["by_lang"] = by_lang
    return out


# ---------------------------------------------------------------- peers

def run_sklearn(train, test):
    pipe = Pipeline([
        ("features", FeatureUnion([
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                     min_df=2, lowercase=True)),
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                     min_df=1, lowercase=True)),
        ])),
        ("svm", LinearSVC(C=1.0, random_state=SEED)),
    ])
    x_train = [clean(r["text"]) for r in train]
    y_train = [r["label"] for r in train]
    t0 = time.perf_counter()
    pipe.fit(x_train, y_train)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = list(pipe.predict([clean(r["text"]) for r in test]))
    predict_s = time.perf_counter() - t0
    n_feat = len(pipe.named_steps["features"].get_feature_names_out())
    params = {
        "char": "TfidfVectorizer(analyzer=char_wb, ngram_range=(2,5), sublinear_tf=True, min_df=2)",
        "word": "TfidfVectorizer(analyzer=word, ngram_range=(1,2), sublinear_tf=True, min_df=1)",
        "clf": f"LinearSVC(C=1.0, random_state={SEED})",
        "n_features": n_feat,
    }
    return pred, train_s, predict_s, params


def run_fasttext(train, test):
    import fasttext

    params = dict(minn=2, maxn=5, wordNgrams=2, epoch=25, lr=0.5, dim=100,
                  seed=SEED, thread=1, verbose=0)
    with tempfile.TemporaryDirectory(prefix="mujib-peers-") as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as fh:
            for r in train:
                fh.write(f"__label__{r['label']} {clean(r['text'])}\n")
        t0 = time.perf_counter()
        model = fasttext.train_supervised(input=path, **params)
        train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels, _ = model.predict([clean(r["text"]) for r in test], k=1)
    predict_s = time.perf_counter() - t0
    pred = [ls[0][len("__label__"):] for ls in labels]
    params = {k: v for k, v in params.items() if k != "verbose"}
    return pred, train_s, predict_s, params


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.path.join(REPO, "data", "messages"),
                    help="folder of labelled .jsonl files (default: data/messages)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"), help="where to write the JSON results")
    args = ap.parse_args()

    random.seed(SEED)
    np.random.seed(SEED)

    files, train, test, bad = load(args.data_dir)
    if not train or not test:
        sys.exit(f"need both splits: train={len(train)} test={len(test)}")
    labels = sorted({r["label"] for r in train} | {r["label"] for r in test})
    gold = [r["label"] for r in test]
    langs = [r.get("lang") or "?" for r in test]

    print(f"data: {args.data_dir}  files={len(files)}  train={len(train)}  test={len(test)}  skipped={bad}")
    print("test by lang: " + ", ".join(f"{k}={v}" for k, v in sorted(Counter(langs).items())))

    peers = {}
    for name, fn in [("sklearn_tfidf_linearsvc", run_sklearn), ("fasttext", run_fasttext)]:
        pred, train_s, predict_s, params = fn(train, test)
        res = evaluate(gold, pred, langs, labels)
        res.update(train_seconds=train_s, predict_seconds=predict_s, params=params)
        peers[name] = res

    # ---- table
    names = list(peers)
    w = max(len(n) for n in names)
    col = 12

    def row(title, vals):
        print(f"{title:<26}" + "".join(f"{v:>{max(col, w + 2)}}" for v in vals))

    print()
    row("", names)
    row("accuracy", [f"{peers[n]['accuracy']:.4f}" for n in names])
    row("macro-F1", [f"{peers[n]['macro_f1']:.4f}" for n in names])
    row("train seconds", [f"{peers[n]['train_seconds']:.2f}" for n in names])
    print("-- F1 by label")
    for l in labels:
        row(f"  {l}", [f"{peers[n]['per_label_f1'][l]:.4f}" for n in names])
    print("-- macro-F1 by lang (n)")
    for lang in sorted(set(langs)):
        row(f"  {lang} ({langs.count(lang)})", [f"{peers[n]['by_lang'][lang]['macro_f1']:.4f}" for n in names])

    import fasttext  # noqa: F401  (for the version record)
    try:
        from importlib.metadata import version
        ft_version = version("fasttext-numpy2-wheel")
    except Exception:
        ft_version = "?"
    result = {
        "data_dir": os.path.relpath(os.path.abspath(args.data_dir), REPO),
        "files": [os.path.basename(f) for f in files],
        "n_train": len(train),
        "n_test": len(test),
        "skipped_lines": bad,
        "labels": labels,
        "test_n_by_lang": dict(sorted(Counter(langs).items())),
        "preprocessing": "lowercase + collapse whitespace/newlines to single spaces (both peers)",
        "metric_note": "macro-F1 averages F1 over labels occurring as gold or prediction in the subset "
                       "(same definition as mujib's src/classify/metrics.rs)",
        "seed": SEED,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "fasttext-numpy2-wheel": ft_version,
            "machine": platform.machine(),
        },
        "peers": peers,
    }
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    print(f"\nwrote {os.path.relpath(os.path.abspath(args.out), os.getcwd())}")


if __name__ == "__main__":
    main()
