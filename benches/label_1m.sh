#!/usr/bin/env bash
# Command-level benchmark of `mujib label` (issue 6): builds a CSV of ROWS
# rows (default 1,000,000) by repeating the texts of data/messages, labels it
# with --threads 1 and --threads 2 under /usr/bin/time -v, and reports rows/s,
# the CPU share the run got (on a busy machine a low share means rows/s is
# understated) and peak memory (max RSS). For reference it also times
# `mujib respond --json` on up to 100,000 of the same texts, one per line:
# the responder's own single-thread throughput with next to no I/O.
#
#   benches/label_1m.sh [ROWS]        # from anywhere; needs python3
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
bin=target/release/mujib

python3 - "$rows" "$work/in.csv" "$work/lines.txt" <<'EOF'
import csv, glob, json, sys
rows, out, lines = int(sys.argv[1]), sys.argv[2], sys.argv[3]
texts = []
for path in sorted(glob.glob("data/messages/*.jsonl")):
    for line in open(path, encoding="utf-8"):
        try:
            texts.append(json.loads(line)["text"])
        except (ValueError, KeyError):
            pass
with open(out, "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "channel", "text"])
    for i in range(rows):
        w.writerow([i, "web", texts[i % len(texts)]])
with open(lines, "w", encoding="utf-8") as f:
    for i in range(min(rows, 100_000)):
        f.write(texts[i % len(texts)].replace("\n", " ") + "\n")
EOF
echo "input: $rows rows, $(du -h "$work/in.csv" | cut -f1)"

# Runs a command under /usr/bin/time -v; prints rows/s and max RSS.
measure() {
    local what=$1 n=$2
    shift 2
    /usr/bin/time -v -o "$work/time" "$@" 2>"$work/stderr" || {
        echo "$what failed:" >&2
        cat "$work/stderr" "$work/time" >&2
        exit 1
    }
    python3 - "$what" "$n" "$work/time" <<'EOF'
import sys
what, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = dict(l.strip().rsplit(": ", 1) for l in open(path) if ": " in l)
wall = t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall)))
rss = int(t["Maximum resident set size (kbytes)"]) / 1024
cpu = float(t["User time (seconds)"]) + float(t["System time (seconds)"])
# CPU share shows whether other work on the machine took cores from the run
# (rows/s then understates); rows per CPU-second does not depend on it.
print(f"{what:<28} {n:>9} rows  {secs:7.1f} s  {n / secs:6.0f} rows/s  "
      f"cpu {t['Percent of CPU this job got']:>5}  {n / cpu:6.0f} rows/cpu-s  max RSS {rss:4.0f} MB")
EOF
}

n_lines=$(wc -l <"$work/lines.txt")
measure "respond --json (reference)" "$n_lines" \
    sh -c "$bin respond --json <'$work/lines.txt' >'$work/respond.jsonl'"
for threads in 1 2; do
    measure "label --threads $threads" "$rows" \
        "$bin" label --threads "$threads" "$work/in.csv" -o "$work/out.csv"
    tail -n +1 "$work/stderr" | head -1
done
python3 - "$work/out.csv" "$rows" <<'EOF'
import csv, sys
n = sum(1 for _ in csv.reader(open(sys.argv[1], encoding="utf-8", newline=""))) - 1
assert n == int(sys.argv[2]), f"{n} rows out, {sys.argv[2]} in"
print(f"output: {n} rows, as many as in")
EOF
