//! First pipeline stage: folds the many ways people type the same Arabic or
//! English word into one spelling, so later stages see one feature, not ten.
//!
//! Every rule can be switched off in [`NormalizerConfig`]; the config is stored
//! in the model file so prediction always normalizes exactly as training did.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde::{Deserialize, Serialize};
use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Token that replaces a URL.
pub const URL_TOKEN: &str = "<url>";
/// Token that replaces an e-mail address.
pub const EMAIL_TOKEN: &str = "<email>";
/// Token that replaces an @mention.
pub const MENTION_TOKEN: &str = "<user>";

/// Which normalization rules run. All default to on except `hamza_seats`
/// (its effect on accuracy is measured, see the README).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizerConfig {
    /// Unicode NFKC: presentation forms, lam-alef ligatures, full-width Latin.
    pub nfkc: bool,
    /// Remove harakat, tanween, shadda, sukun, dagger alef and Quranic marks.
    pub strip_diacritics: bool,
    /// Remove tatweel (U+0640).
    pub strip_tatweel: bool,
    /// أ إ آ ٱ and the wavy-hamza alefs become ا.
    pub unify_alef: bool,
    /// ى and Persian ی become ي; keheh ک becomes ك.
    pub unify_yeh_kaf: bool,
    /// ة becomes ه.
    pub ta_marbuta_to_ha: bool,
    /// ؤ becomes و and ئ becomes ي.
    pub hamza_seats: bool,
    /// Arabic-Indic and extended Arabic-Indic digits become 0-9.
    pub ascii_digits: bool,
    /// Arabic comma, semicolon and question mark become `,` `;` `?`.
    pub ascii_punctuation: bool,
    /// Remove zero-width, direction and other invisible characters.
    pub strip_invisible: bool,
    /// Runs of 3+ identical letters shrink (Arabic to 1, Latin to 2).
    pub collapse_elongation: bool,
    /// Lowercase cased letters (Latin and others).
    pub lowercase: bool,
    /// Any run of whitespace becomes one space; leading/trailing space goes.
    pub collapse_whitespace: bool,
    /// URLs, e-mails and @mentions become `<url>`, `<email>`, `<user>`.
    pub placeholders: bool,
    /// `#word_word` becomes `word word`.
    pub split_hashtags: bool,
}

impl Default for NormalizerConfig {
    fn default() -> Self {
        NormalizerConfig {
            nfkc: true,
            strip_diacritics: true,
            strip_tatweel: true,
            unify_alef: true,
            unify_yeh_kaf: true,
            ta_marbuta_to_ha: true,
            hamza_seats: false,
            ascii_digits: true,
            ascii_punctuation: true,
            strip_invisible: true,
            collapse_elongation: true,
            lowercase: true,
            collapse_whitespace: true,
            placeholders: true,
            split_hashtags: true,
        }
    }
}

/// Normalizes message text. Cheap to clone, `Send + Sync`, used through `&self`.
///
/// ```
/// use mujib::Normalizer;
/// let n = Normalizer::default();
/// assert_eq!(n.normalize("شكــــراااا  جزيلاً ﻻ ١٢٣ @DubaiPoliceHQ"), "شكرا جزيلا لا 123 <user>");
/// // Already-normalized text is returned borrowed, without allocating.
/// assert!(matches!(n.normalize("hello world"), std::borrow::Cow::Borrowed(_)));
/// ```
#[derive(Clone)]
pub struct Normalizer {
    config: NormalizerConfig,
    // Shared so that cloning stays a reference-count bump.
    tables: Arc<Tables>,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer::new(NormalizerConfig::default())
    }
}

impl fmt::Debug for Normalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The tables are derived from the config; printing them adds nothing.
        f.debug_struct("Normalizer")
            .field("config", &self.config)
            .finish()
    }
}

// Leftmost-first: a URL wins over an e-mail or mention inside it.
static LINKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|@\w+")
        .expect("static regex is valid")
});

impl Normalizer {
    /// A normalizer with the given rules.
    pub fn new(config: NormalizerConfig) -> Self {
        let tables = Arc::new(Tables::new(&config));
        Normalizer { config, tables }
    }

    /// The rules this normalizer applies.
    pub fn config(&self) -> &NormalizerConfig {
        &self.config
    }

    /// Normalizes `text`. Returns the input borrowed when no rule changes it.
    /// Idempotent, and never panics.
    pub fn normalize<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let (first, seen) = self.once(text);
        // One pass is a fixed point except in rare cases where removing an
        // invisible character or mark creates a new pattern (`@`+LRM+`name`,
        // a letter and accent that now compose). Those are cheap to detect.
        if !self.needs_second_pass(&first, seen) {
            return first;
        }
        let mut cur = first.into_owned();
        for _ in 0..3 {
            let (next, _) = self.once(&cur);
            if next == cur.as_str() {
                break;
            }
            cur = next.into_owned();
        }
        Cow::Owned(cur)
    }

    /// `seen` is what the pass that produced `s` saw in its input: the
    /// output holds no `@`, `#`, `://`, `www.` or NFKC-unstable character
    /// the input did not, so most texts skip the checks on `s`.
    fn needs_second_pass(&self, s: &str, seen: u64) -> bool {
        let cfg = &self.config;
        (cfg.placeholders && links_in(s, seen))
            || (cfg.nfkc && seen & STOP != 0 && needs_nfkc(s))
            || (cfg.split_hashtags && seen & HASH_SIGN != 0 && s.contains('#'))
    }

    /// One round of all rules; also returns what the final pass saw.
    fn once<'a>(&self, text: &'a str) -> (Cow<'a, str>, u64) {
        let cfg = &self.config;
        // NFKC and link placeholders rewrite the text before the pass, but
        // rarely apply. So the pass runs on `text` first, and reports
        // whether it met anything that would make them apply.
        let (out, seen) = self.pass(text);
        // `seen` already says whether `needs_nfkc`'s walk would stop.
        let fold = cfg.nfkc && seen & STOP != 0 && nfkc_quick_not_yes(text);
        let links = !fold && cfg.placeholders && links_in(text, seen);
        if !fold && !links {
            return (out, seen);
        }
        let linked = if fold {
            let folded: String = text.nfkc().collect();
            if cfg.placeholders && may_have_links(&folded) {
                replace_links(&folded).unwrap_or(folded)
            } else {
                folded
            }
        } else {
            match replace_links(text) {
                Some(linked) => linked,
                // `@` or `www.` with nothing the regex takes: the pass
                // already ran on the right text.
                None => return (out, seen),
            }
        };
        let (out, seen) = self.pass(&linked);
        (Cow::Owned(out.into_owned()), seen)
    }

    /// The single character pass: every per-character rule, whitespace,
    /// hashtags and elongation, writing only when something changes. Also
    /// returns the union of the entries of every input character (for the
    /// hint flags).
    ///
    /// [`Pass::run_plain`] takes the common stretches, where a character is
    /// kept or mapped and only the elongation count matters; [`Pass::step`]
    /// applies the full rules to everything else, one character at a time.
    fn pass<'a>(&self, src: &'a str) -> (Cow<'a, str>, u64) {
        let t = &*self.tables;
        let b = src.as_bytes();
        let mut st = Pass::new(src);
        let mut seen = 0;
        let mut i = 0;
        while i < b.len() {
            if st.is_plain_state() {
                i = st.run_plain(t, b, i, &mut seen);
            }
            if let Some((e, len)) = t.lookup(b, i) {
                seen |= e;
                st.step(e, i, len);
                i += len;
                continue;
            }
            let Some(c) = src.get(i..).and_then(|s| s.chars().next()) else {
                break;
            };
            let len = c.len_utf8();
            let e = classify(&self.config, c);
            seen |= e;
            if e & MULTI == 0 {
                st.step(e, i, len);
            } else if st.before_emit(e, i) {
                let m = char::from_u32(out_char(e) as u32).unwrap_or(c);
                for l in m.to_lowercase() {
                    st.emit(output_entry(&self.config, l), NONE, 0);
                }
            }
            i += len;
        }
        (st.finish(), seen)
    }
}

fn map_char(cfg: &NormalizerConfig, c: char) -> char {
    match c {
        '\u{0623}' | '\u{0625}' | '\u{0622}' | '\u{0671}' | '\u{0672}' | '\u{0673}'
            if cfg.unify_alef =>
        {
            'ا'
        }
        '\u{0649}' | '\u{06CC}' if cfg.unify_yeh_kaf => 'ي',
        '\u{06A9}' if cfg.unify_yeh_kaf => 'ك',
        '\u{0629}' if cfg.ta_marbuta_to_ha => 'ه',
        '\u{0624}' if cfg.hamza_seats => 'و',
        '\u{0626}' if cfg.hamza_seats => 'ي',
        '\u{0660}'..='\u{0669}' if cfg.ascii_digits => char::from(b'0' + (c as u32 - 0x0660) as u8),
        '\u{06F0}'..='\u{06F9}' if cfg.ascii_digits => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        '\u{060C}' if cfg.ascii_punctuation => ',',
        '\u{061B}' if cfg.ascii_punctuation => ';',
        '\u{061F}' if cfg.ascii_punctuation => '?',
        _ => c,
    }
}

// A character's entry: what the pass needs to know about it under one
// config, packed in a u64 so the tables stay small: flags in the low bits
// (testable with immediates), then the character to output (after mapping
// and lowercasing), then its run code on top (one shift to extract).
const CHAR_SHIFT: u32 = 22;
/// The run code: what [`Pass::run_plain`] compares runs with. The output
/// character, with NOT_A_LETTER set unless it is a letter under the
/// elongation rule. (Only table characters, below U+0800, reach it.)
const RUN_SHIFT: u32 = 43;
const NOT_A_LETTER: u64 = 1 << 20;

/// The output character of entry `e`.
fn out_char(e: u64) -> u64 {
    (e >> CHAR_SHIFT) & 0x1F_FFFF
}

/// Dropped outright (invisible, diacritic, tatweel).
const SKIP: u64 = 1 << 0;
/// Whitespace that collapses.
const SPACE: u64 = 1 << 1;
/// Exactly `' '`, which can stay as-is when it is a lone separator.
const SIMPLE: u64 = 1 << 2;
/// `#` that may start a hashtag.
const HASH: u64 = 1 << 3;
const UNDERSCORE: u64 = 1 << 4;
/// The source character is alphanumeric (hashtag words).
const ALNUM: u64 = 1 << 5;
/// The output is a letter and elongation collapses.
const LETTER: u64 = 1 << 6;
/// The output is the source character unchanged.
const KEEP: u64 = 1 << 7;
/// Not KEEP: the output differs from the source character.
const CHANGED: u64 = 1 << 8;
/// The output is not ASCII (elongated runs shrink to one, not two).
const WIDE: u64 = 1 << 9;
/// Lowercases to several characters: the output character is the mapped
/// one, lowercased at output time.
const MULTI: u64 = 1 << 10;
/// Needs more than [`Pass::run_plain`] does: SKIP, HASH, or whitespace
/// other than `' '`.
const EXIT: u64 = 1 << 11;
/// Marks the entry of characters the tables do not cover (it also has
/// EXIT, so the plain loop stops there).
const NOT_IN_TABLE: u64 = 1 << 12;

// Hint flags, independent of the config: the pass ORs the entries of its
// input, and these say whether the checks around it (NFKC, links, second
// pass) can apply at all. The pass outputs no hint character its input did
// not have: mapping yields Arabic letters, digits and `,;?`, ASCII
// lowercasing keeps `w`, and the rare non-ASCII lowercasing carries every
// hint.
/// `@`.
const AT_SIGN: u64 = 1 << 13;
/// `:`.
const COLON: u64 = 1 << 14;
/// `w` or `W`.
const W_LETTER: u64 = 1 << 15;
/// `.`.
const DOT: u64 = 1 << 16;
/// `#`.
const HASH_SIGN: u64 = 1 << 17;
/// Not [`is_nfkc_stable`]: NFKC may change the text (see [`needs_nfkc`]).
/// Unlike the link hints, exact: a text's entries have it exactly when
/// `needs_nfkc` goes on to the full quick check.
const STOP: u64 = 1 << 18;
const ALL_HINTS: u64 = AT_SIGN | COLON | W_LETTER | DOT | HASH_SIGN;

/// [`may_have_links`] for text whose characters' entries have no hint flag
/// outside `seen`: searches only for what the hints allow.
fn links_in(s: &str, seen: u64) -> bool {
    (seen & AT_SIGN != 0 && s.contains('@'))
        || (seen & COLON != 0 && s.contains("://"))
        || (seen & (W_LETTER | DOT) == W_LETTER | DOT && (s.contains("www.") || s.contains("WWW.")))
}

/// Entries for every character the table path decides.
struct Tables {
    /// Indexed by [`table_index`]: ASCII, then U+0600..=U+06FF, then
    /// [`NOT_IN_TABLE`] for every other lead byte.
    entries: [u64; 512],
}

/// Per first byte of a character: its base index in [`Tables::entries`].
/// ASCII maps to itself, the Arabic lead bytes D8..DB to 128 + their two
/// payload bits (the second byte adds six more, see [`SECOND_MASK`]),
/// everything else to 384.
static BASE: [u16; 256] = {
    let mut t = [384u16; 256];
    let mut x = 0;
    while x < 256 {
        if x < 0x80 {
            t[x] = x as u16;
        } else if x >= 0xD8 && x <= 0xDB {
            t[x] = (128 + ((x & 3) << 6)) as u16;
        }
        x += 1;
    }
    t
};

/// Per first byte of a character: which bits of the second byte add to
/// its index (the payload for the Arabic lead bytes, none otherwise).
static SECOND_MASK: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut x = 0xD8;
    while x <= 0xDB {
        t[x] = 0x3F;
        x += 1;
    }
    t
};

/// Index into [`Tables::entries`] of the character starting with `x`,
/// followed by `y`. Lookups rather than branches: text switches between
/// ASCII spaces and Arabic letters too often to predict.
#[inline(always)]
fn table_index(x: u8, y: u8) -> usize {
    (usize::from(BASE[usize::from(x)]) | usize::from(y & SECOND_MASK[usize::from(x)])) & 511
}

impl Tables {
    /// The entry and length of the character at `i` when it is ASCII or in
    /// the two-byte Arabic block (lead bytes D8..DB): most text.
    #[inline(always)]
    fn lookup(&self, b: &[u8], i: usize) -> Option<(u64, usize)> {
        let x = *b.get(i)?;
        let y = b.get(i + 1).copied().unwrap_or(0);
        let e = self.entries[table_index(x, y)];
        if e & NOT_IN_TABLE != 0 {
            return None;
        }
        Some((e, 1 + usize::from(x >> 7)))
    }

    fn new(cfg: &NormalizerConfig) -> Self {
        let mut entries = [NOT_IN_TABLE | EXIT; 512];
        for (i, e) in entries.iter_mut().take(384).enumerate() {
            let cp = if i < 128 {
                i as u32
            } else {
                0x600 + i as u32 - 128
            };
            if let Some(c) = char::from_u32(cp) {
                *e = classify(cfg, c);
            }
        }
        Tables { entries }
    }
}

/// Emoji and pictographs: neither letters, digits, spaces nor cased, so
/// every rule keeps them. Checked first because they are the characters
/// outside the tables that messages use most.
const PICTOGRAPHS: std::ops::RangeInclusive<char> = '\u{1F300}'..='\u{1FAFF}';

/// The entry for `c` under `cfg`: the one place the per-character rules live.
fn classify(cfg: &NormalizerConfig, c: char) -> u64 {
    if PICTOGRAPHS.contains(&c) {
        return KEEP
            | WIDE
            | (u64::from(c) << CHAR_SHIFT)
            | ((u64::from(c) | NOT_A_LETTER) << RUN_SHIFT);
    }
    classify_any(cfg, c)
}

fn classify_any(cfg: &NormalizerConfig, c: char) -> u64 {
    let mut e = match c {
        '@' => AT_SIGN,
        ':' => COLON,
        'w' | 'W' => W_LETTER,
        '.' => DOT,
        '#' => HASH_SIGN,
        _ => 0,
    };
    if !is_nfkc_stable(c) {
        e |= STOP;
    }
    if (cfg.strip_invisible && is_invisible(c))
        || (cfg.strip_diacritics && is_diacritic(c))
        || (cfg.strip_tatweel && c == '\u{0640}')
    {
        e |= SKIP;
    }
    if cfg.collapse_whitespace && (is_space(c) || (cfg.strip_invisible && c == '\u{200B}')) {
        e |= SPACE;
    }
    if c == ' ' {
        e |= SIMPLE;
    }
    if cfg.split_hashtags && c == '#' {
        e |= HASH;
    }
    if c == '_' {
        e |= UNDERSCORE;
    }
    if is_alnum(c) {
        e |= ALNUM;
    }
    if e & (SKIP | HASH) != 0 || e & (SPACE | SIMPLE) == SPACE {
        e |= EXIT;
    }
    let m = map_char(cfg, c);
    if cfg.lowercase && is_upper(m) {
        e |= CHANGED;
        if m.is_ascii() {
            return e | output_entry(cfg, m.to_ascii_lowercase());
        }
        // Unicode lowercasing can produce ASCII (KELVIN SIGN to `k`); rare
        // enough to just give up on the link hints. Not on STOP, though:
        // `once` takes it as exactly "`needs_nfkc` would look further", and
        // `output_has_no_hint_its_input_lacks` checks it needs no help.
        e |= ALL_HINTS;
        let mut lower = m.to_lowercase();
        return match (lower.next(), lower.next()) {
            (Some(l), None) => e | output_entry(cfg, l),
            _ => e | MULTI | (u64::from(m) << CHAR_SHIFT),
        };
    }
    e |= if m == c { KEEP } else { CHANGED };
    e | output_entry(cfg, m)
}

/// The output half of an entry: the character and how elongation treats it.
fn output_entry(cfg: &NormalizerConfig, c: char) -> u64 {
    let mut e = u64::from(c) << CHAR_SHIFT;
    if cfg.collapse_elongation && is_letter(c) {
        e |= LETTER | (u64::from(c) << RUN_SHIFT);
    } else {
        e |= (u64::from(c) | NOT_A_LETTER) << RUN_SHIFT;
    }
    if !c.is_ascii() {
        e |= WIDE;
    }
    e
}

/// No offset: the pending space or `#` is absent, or the output is not a
/// source character.
const NONE: usize = usize::MAX;

/// The pass's state between characters.
struct Pass<'a> {
    out: Out<'a>,
    /// Pending whitespace: offset of its first char (or NONE), and whether
    /// it is exactly one ASCII space (then it can be kept as-is).
    space: usize,
    space_simple: bool,
    emitted_any: bool,
    run_char: u64,
    run_len: usize,
    hash_at: usize,
    in_hashtag: bool,
}

impl<'a> Pass<'a> {
    fn new(src: &'a str) -> Self {
        Pass {
            out: Out::new(src),
            space: NONE,
            space_simple: false,
            emitted_any: false,
            run_char: 0,
            run_len: 0,
            hash_at: NONE,
            in_hashtag: false,
        }
    }

    /// No pending space or `#` and not inside a hashtag: the state in
    /// which [`Pass::run_plain`] can run.
    #[inline(always)]
    fn is_plain_state(&self) -> bool {
        // Before the first output a space is dropped, not kept: `step`'s job.
        self.emitted_any
            && self.space == NONE
            && self.hash_at == NONE
            && !self.in_hashtag
            // `run_plain` tracks runs of up to two.
            && self.run_len < 3
    }

    /// Runs over characters that need only output and the elongation count
    /// (most text) with the state in registers, and returns the offset of
    /// the first character that needs the full rules, not consuming it.
    /// Starts and ends in the plain state; each character is handled
    /// exactly as [`Pass::step`] would.
    #[inline(never)]
    fn run_plain(&mut self, t: &Tables, b: &[u8], mut i: usize, seen: &mut u64) -> usize {
        // The elongation count as run codes (see RUN_SHIFT): `last` is the
        // last output character's (or `NOTHING`), and `pair` the code of a
        // character output twice in a row just now, else `NO_PAIR`. A
        // character equal to `pair` may make a run of three; for
        // non-letters (three dots) that is a false alarm `step` sorts out,
        // which keeps the common path short.
        const NO_PAIR: u64 = u64::MAX;
        const NOTHING: u64 = 0;
        let code = self.run_char;
        let mut last = if self.run_len >= 1 { code } else { NOTHING };
        let mut pair = if self.run_len >= 2 { code } else { NO_PAIR };
        let mut acc = *seen;
        // Source bytes kept since the last change: copied in one go.
        let mut kept = i;
        // SPACE when the previous character was a ' ', else 0. `step` holds
        // such a space pending and outputs it as-is before the next
        // character; when that character is output here too, the space
        // simply stays in the kept bytes. Otherwise it is handed back to
        // `step` as pending.
        let mut after_space = 0;
        // The entry flags that leave the common path: EXIT, CHANGED and
        // `after_space`, carried along so the test is a single `and`.
        let mut unusual = EXIT | CHANGED;
        // Stops one byte short so that the second byte is always there;
        // `step` takes the last character.
        while let (Some(&x), Some(&y)) = (b.get(i), b.get(i + 1)) {
            let e = t.entries[table_index(x, y)];
            acc |= e;
            let len = 1 + usize::from(x >> 7);
            let run = e >> RUN_SHIFT;
            // One branch for everything unusual; `|` does not short-circuit.
            if (e & unusual != 0) | (run == pair) {
                // Keeps the common path of the loop in one straight run of
                // code.
                std::hint::cold_path();
                if e & (EXIT | after_space) != 0 {
                    if e & SKIP != 0 && after_space == 0 {
                        self.out.keep_range(kept, i);
                        i += len;
                        kept = i;
                        continue;
                    }
                    break;
                }
                if run == pair {
                    // Elongation (or a false alarm): rare, left to `step`.
                    break;
                }
                self.out.replace(kept, i, out_char(e));
                kept = i + len;
            }
            pair = if run == last { run } else { NO_PAIR };
            last = run;
            after_space = e & SPACE;
            unusual = after_space | EXIT | CHANGED;
            i += len;
        }
        if after_space == 0 {
            self.out.keep_range(kept, i);
        } else {
            // The space is the one byte before `i`.
            let at = i - 1;
            self.out.keep_range(kept, at);
            self.space = at;
            self.space_simple = true;
        }
        self.run_char = last;
        // Back to `step`'s count, which only runs over letters.
        self.run_len = if last == NOTHING || last & NOT_A_LETTER != 0 {
            0
        } else if pair == last {
            2
        } else {
            1
        };
        *seen = acc;
        i
    }

    #[inline(always)]
    fn step(&mut self, e: u64, pos: usize, len: usize) {
        if self.before_emit(e, pos) {
            self.emit(e, if e & KEEP != 0 { pos } else { NONE }, len);
        }
    }

    /// Every rule that runs before a character is output; false when the
    /// character is consumed (dropped, whitespace, hashtag syntax).
    #[inline(always)]
    fn before_emit(&mut self, e: u64, pos: usize) -> bool {
        if e & SKIP != 0 {
            return false;
        }
        if self.hash_at != NONE {
            let hpos = self.hash_at;
            self.hash_at = NONE;
            if e & ALNUM != 0 {
                // `#word`: drop the sign, keep a word boundary before it.
                self.in_hashtag = true;
                self.mark_space(hpos, false);
            } else {
                self.emit(u64::from('#') << CHAR_SHIFT, hpos, 1);
            }
        }
        if e & SPACE != 0 {
            self.in_hashtag = false;
            self.mark_space(pos, e & SIMPLE != 0);
            self.run_len = 0;
            return false;
        }
        if e & HASH != 0 {
            self.in_hashtag = false;
            self.hash_at = pos;
            return false;
        }
        if self.in_hashtag {
            if e & UNDERSCORE != 0 {
                self.mark_space(pos, false);
                self.run_len = 0;
                return false;
            }
            if e & ALNUM == 0 {
                self.in_hashtag = false;
            }
        }
        true
    }

    #[inline(always)]
    fn mark_space(&mut self, pos: usize, simple: bool) {
        if self.space == NONE {
            self.space = pos;
            self.space_simple = simple;
        } else {
            self.space_simple = false;
        }
    }

    /// Emits one output char: first any pending space, then the entry's
    /// character subject to the elongation rule. `pos` is the source offset
    /// when the character is the source char unchanged (`len` bytes), which
    /// lets the output stay borrowed.
    #[inline(always)]
    fn emit(&mut self, e: u64, pos: usize, len: usize) {
        if self.space != NONE {
            let spos = self.space;
            self.space = NONE;
            if self.emitted_any {
                if self.space_simple {
                    self.out.keep(spos, 1);
                } else {
                    self.out.push(' ');
                }
                self.run_len = 0;
            }
        }
        let c = out_char(e);
        if e & LETTER != 0 {
            if self.run_len > 0 && self.run_char == c {
                self.run_len += 1;
            } else {
                self.run_char = c;
                self.run_len = 1;
            }
            if self.run_len >= 3 {
                if self.run_len == 3 && e & WIDE != 0 {
                    // Arabic has no doubled letters in writing (shadda does
                    // that), so an elongated run shrinks to one; Latin keeps
                    // two (`good`, `see`).
                    self.out.pop();
                }
                return;
            }
        } else {
            self.run_len = 0;
        }
        if pos == NONE {
            self.out
                .push(char::from_u32(c as u32).unwrap_or(char::REPLACEMENT_CHARACTER));
        } else {
            self.out.keep(pos, len);
        }
        self.emitted_any = true;
    }

    fn finish(mut self) -> Cow<'a, str> {
        if self.hash_at != NONE {
            let hpos = self.hash_at;
            self.emit(u64::from('#') << CHAR_SHIFT, hpos, 1);
        }
        self.out.finish()
    }
}

/// Output as `buf` followed by the source slice `start..end`, so unchanged
/// stretches are copied in bulk, and nothing is allocated while the output
/// is still one slice of the source.
struct Out<'a> {
    src: &'a str,
    buf: String,
    owned: bool,
    start: usize,
    end: usize,
}

impl<'a> Out<'a> {
    fn new(src: &'a str) -> Self {
        Out {
            src,
            buf: String::new(),
            owned: false,
            start: 0,
            end: 0,
        }
    }

    /// Appends the `len` source bytes at `pos`.
    #[inline(always)]
    fn keep(&mut self, pos: usize, len: usize) {
        if pos != self.end {
            self.flush();
            self.start = pos;
        }
        self.end = pos + len;
    }

    /// Appends the source bytes `start..end`, if any.
    #[inline(always)]
    fn keep_range(&mut self, start: usize, end: usize) {
        if start < end {
            self.keep(start, end - start);
        }
    }

    /// Appends the source bytes `start..end`, then `c` (a character code
    /// from a table entry). Called once per changed character by the plain
    /// loop, so it does the work of `keep_range`, `flush` and `push` in one
    /// go, out of line.
    #[inline(never)]
    fn replace(&mut self, start: usize, end: usize, c: u64) {
        let c = char::from_u32(c as u32).unwrap_or(char::REPLACEMENT_CHARACTER);
        let src = self.src;
        let (pending_start, pending_end) = (self.start, self.end);
        let buf = self.owned();
        if pending_end == start {
            buf.push_str(src.get(pending_start..end).unwrap_or_default());
        } else {
            buf.push_str(src.get(pending_start..pending_end).unwrap_or_default());
            buf.push_str(src.get(start..end).unwrap_or_default());
        }
        buf.push(c);
        self.start = end;
        self.end = end;
    }

    fn push(&mut self, c: char) {
        self.flush();
        self.owned().push(c);
    }

    /// Removes the last output char.
    fn pop(&mut self) {
        match self
            .src
            .get(self.start..self.end)
            .and_then(|s| s.chars().next_back())
        {
            Some(c) => self.end -= c.len_utf8(),
            None => {
                self.owned().pop();
            }
        }
    }

    // Out of line: keeps the hot loops that call `keep` small.
    #[inline(never)]
    fn flush(&mut self) {
        if self.start < self.end {
            let (src, start, end) = (self.src, self.start, self.end);
            if let Some(s) = src.get(start..end) {
                self.owned().push_str(s);
            }
        }
        self.start = self.end;
    }

    fn owned(&mut self) -> &mut String {
        if !self.owned {
            self.owned = true;
            self.buf.reserve(self.src.len());
        }
        &mut self.buf
    }

    fn finish(mut self) -> Cow<'a, str> {
        if !self.owned {
            return Cow::Borrowed(self.src.get(self.start..self.end).unwrap_or_default());
        }
        self.flush();
        Cow::Owned(self.buf)
    }
}

// Fast character classes. Almost every character of this traffic is ASCII
// or in the Arabic block, where the answer is a range check; only the rest
// pays for a Unicode table lookup. They build the tables, and decide the
// few characters outside them.

const ARABIC: std::ops::RangeInclusive<char> = '\u{0600}'..='\u{06FF}';

fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else if ARABIC.contains(&c) {
        matches!(
            c,
            '\u{0620}'..='\u{064A}'
                | '\u{066E}'..='\u{066F}'
                | '\u{0671}'..='\u{06D3}'
                | '\u{06D5}'
                | '\u{06EE}'..='\u{06EF}'
                | '\u{06FA}'..='\u{06FC}'
                | '\u{06FF}'
        )
    } else {
        c.is_alphabetic()
    }
}

fn is_alnum(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else if ARABIC.contains(&c) {
        is_letter(c) || matches!(c, '\u{0660}'..='\u{0669}' | '\u{06F0}'..='\u{06F9}')
    } else {
        c.is_alphanumeric()
    }
}

fn is_space(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_whitespace() || c == '\x0B'
    } else {
        !ARABIC.contains(&c) && c.is_whitespace()
    }
}

fn is_upper(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_uppercase()
    } else {
        !ARABIC.contains(&c) && c.is_uppercase()
    }
}

/// Harakat, tanween, shadda, sukun and other marks (U+064B–U+065F), dagger
/// alef (U+0670), Quranic annotation marks (U+0610–U+061A, U+06D6–U+06ED).
/// Ranges from the Unicode Arabic block chart.
fn is_diacritic(c: char) -> bool {
    matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0610}'..='\u{061A}' | '\u{06D6}'..='\u{06ED}')
}

/// Characters with no visible glyph that sit *inside* words (joiners, bidi
/// controls, BOM, soft hyphen), so removing them never glues two words. The
/// zero-width space U+200B is a word break and is handled as whitespace.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200C}'..='\u{200F}'
            | '\u{061C}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{00AD}'
    )
}

/// Characters NFKC leaves alone whatever surrounds them, decided without
/// a table: ASCII, the Arabic block but for the combining hamza/madda
/// (which compose with the letter before them) and four compatibility
/// letters, and emoji.
fn is_nfkc_stable(c: char) -> bool {
    c.is_ascii()
        || (ARABIC.contains(&c) && !matches!(c, '\u{0653}'..='\u{0655}' | '\u{0675}'..='\u{0678}'))
        // Emoji and pictographs, the emoji variation selector and the
        // joiners have no decomposition.
        || matches!(
            c,
            '\u{1F000}'..='\u{1FAFF}' | '\u{2600}'..='\u{27BF}' | '\u{FE0F}' | '\u{200C}'..='\u{200F}'
        )
}

/// A quick, conservative test for "NFKC would change this".
fn needs_nfkc(s: &str) -> bool {
    // Walks bytes rather than chars: ASCII and the two-byte Arabic block
    // (lead bytes D8..DB) are decided without decoding, which is most text.
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let x = b[i];
        if x < 0x80 {
            i += 1;
            continue;
        }
        if (0xD8..=0xDB).contains(&x) && i + 1 < b.len() {
            let cp = (u32::from(x & 0x1F) << 6) | u32::from(b[i + 1] & 0x3F);
            if matches!(cp, 0x653..=0x655 | 0x675..=0x678) {
                break;
            }
            i += 2;
            continue;
        }
        match s[i..].chars().next() {
            Some(c) if is_nfkc_stable(c) => i += c.len_utf8(),
            _ => break,
        }
    }
    i < b.len() && nfkc_quick_not_yes(s)
}

/// `is_nfkc_quick(s.chars()) != IsNormalized::Yes`, the same algorithm
/// (UAX #15 quick check: any character not allowed, or combining classes
/// out of order) with the Arabic block's data from a table instead of two
/// lookups per character: Arabic text is most of what reaches it.
fn nfkc_quick_not_yes(s: &str) -> bool {
    let arabic = &*ARABIC_NFKC;
    let mut last_cc = 0;
    for c in s.chars() {
        if c.is_ascii() {
            last_cc = 0;
            continue;
        }
        let (cc, allowed) = match arabic.get((c as usize).wrapping_sub(0x600)) {
            Some(&(cc, allowed)) => (cc, allowed),
            None => nfkc_char_data(c),
        };
        if (last_cc > cc && cc != 0) || !allowed {
            return true;
        }
        last_cc = cc;
    }
    false
}

/// Canonical combining class of `c`, and whether NFKC_Quick_Check is Yes.
fn nfkc_char_data(c: char) -> (u8, bool) {
    (
        canonical_combining_class(c),
        is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes,
    )
}

static ARABIC_NFKC: LazyLock<[(u8, bool); 256]> = LazyLock::new(|| {
    let mut t = [(0, true); 256];
    for (i, d) in t.iter_mut().enumerate() {
        if let Some(c) = char::from_u32(0x600 + i as u32) {
            *d = nfkc_char_data(c);
        }
    }
    t
});

fn may_have_links(s: &str) -> bool {
    s.contains('@') || s.contains("://") || s.contains("www.") || s.contains("WWW.")
}

fn replace_links(s: &str) -> Option<String> {
    // Tokens are short: a little headroom saves regrowing.
    let mut out = String::with_capacity(s.len() + 16);
    let mut last = 0;
    for m in LINKS.find_iter(s) {
        let token = if m.as_str().starts_with('@') {
            MENTION_TOKEN
        } else if m.as_str().contains("://") || m.as_str().to_ascii_lowercase().starts_with("www.")
        {
            URL_TOKEN
        } else {
            EMAIL_TOKEN
        };
        out.push_str(&s[last..m.start()]);
        out.push(' ');
        out.push_str(token);
        out.push(' ');
        last = m.end();
    }
    if last == 0 {
        return None;
    }
    out.push_str(&s[last..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use proptest::prelude::*;

    fn norm(s: &str) -> String {
        Normalizer::default().normalize(s).into_owned()
    }

    fn with(f: impl FnOnce(&mut NormalizerConfig)) -> Normalizer {
        let mut c = NormalizerConfig::default();
        f(&mut c);
        Normalizer::new(c)
    }

    #[test]
    fn each_rule_table() {
        let cases: &[(&str, &str, &str)] = &[
            // (rule, input, expected)
            ("nfkc lam-alef ligature", "ﻻ", "لا"),
            ("nfkc presentation forms", "ﺷﻜﺮﺍ", "شكرا"),
            ("nfkc full-width latin", "ＲＴＡ", "rta"),
            ("diacritics tanween", "جزيلاً", "جزيلا"),
            ("diacritics harakat", "مَرْحَبًا", "مرحبا"),
            ("shadda then fatha", "محمّد\u{064E}", "محمد"),
            ("fatha then shadda", "محم\u{064E}\u{0651}د", "محمد"),
            ("dagger alef", "هٰذا", "هذا"),
            ("quranic marks", "الله\u{06DA}", "الله"),
            ("tatweel", "شكــــرا", "شكرا"),
            ("alef hamza below", "إلى", "الي"),
            ("alef hamza above", "أحمد", "احمد"),
            ("alef madda", "آسف", "اسف"),
            ("alef wasla", "ٱلله", "الله"),
            ("alef maqsura", "مستشفى", "مستشفي"),
            ("persian yeh", "ی", "ي"),
            ("keheh", "کيف", "كيف"),
            ("ta marbuta", "مخالفة", "مخالفه"),
            ("hamza seat waw kept by default", "مسؤول", "مسؤول"),
            ("hamza seat yeh kept by default", "مسئول", "مسئول"),
            ("arabic-indic digits phone", "٠٥٠١٢٣٤٥٦٧", "0501234567"),
            ("extended digits", "۰۵۵۹", "0559"),
            (
                "arabic punctuation",
                "ليش؟ ما ردوا، والله؛",
                "ليش? ما ردوا, والله;",
            ),
            ("bidi mark inside word", "مخا\u{200F}لفة", "مخالفه"),
            ("zwnj inside word", "می\u{200C}خواهم", "ميخواهم"),
            (
                "bidi isolate around word",
                "\u{2067}رادار\u{2069} here",
                "رادار here",
            ),
            ("bom and soft hyphen", "\u{FEFF}traf\u{00AD}fic", "traffic"),
            (
                "zero-width space separates",
                "fine\u{200B}paid",
                "fine paid",
            ),
            ("elongation arabic", "شكراااا", "شكرا"),
            ("elongation latin", "pleeeease", "pleease"),
            ("elongation keeps doubles", "الله good", "الله good"),
            ("elongation across tatweel", "لاـاـاـا", "لا"),
            ("lowercase", "PLEASE Help", "please help"),
            ("whitespace", "  a\t\tb\n\nc  ", "a b c"),
            ("url", "see https://rta.ae/x?y=1 now", "see <url> now"),
            (
                "url arabic path",
                "https://example.ae/خدمات/مخالفات",
                "<url>",
            ),
            ("www url", "visit WWW.Example.com.", "visit <url>"),
            ("email", "mail me a.b@mail.co.uk pls", "mail me <email> pls"),
            ("mention", "@DubaiPoliceHQ شكرا", "<user> شكرا"),
            ("mention arabic", "@شرطة_دبي", "<user>"),
            ("hashtag", "#اليوم_الوطني", "اليوم الوطني"),
            ("long hashtag", "#هاشتاق_طويل_جدا", "هاشتاق طويل جدا"),
            ("hashtag glued", "شكرا#دبي", "شكرا دبي"),
            ("lone hash", "room # 5", "room # 5"),
            ("emoji kept", "شكرا 🙏😡", "شكرا 🙏😡"),
            ("underscore outside hashtag", "my_id", "my_id"),
            (
                "issue example",
                "شكــــراااا  جزيلاً ﻻ ١٢٣ @DubaiPoliceHQ",
                "شكرا جزيلا لا 123 <user>",
            ),
        ];
        for (rule, input, expected) in cases {
            assert_eq!(norm(input), *expected, "rule: {rule}, input: {input:?}");
        }
    }

    #[test]
    fn hamza_seat_rule_switches() {
        let n = with(|c| c.hamza_seats = true);
        assert_eq!(n.normalize("مسؤول"), "مسوول");
        assert_eq!(n.normalize("مسئول"), "مسيول");
    }

    #[test]
    fn rules_switch_off() {
        let n = with(|c| {
            c.ta_marbuta_to_ha = false;
            c.lowercase = false;
            c.placeholders = false;
        });
        assert_eq!(n.normalize("مخالفة ABC @x"), "مخالفة ABC @x");
        let n = with(|c| c.collapse_elongation = false);
        assert_eq!(n.normalize("شكراااا"), "شكراااا");
    }

    #[test]
    fn unchanged_text_is_borrowed() {
        let n = Normalizer::default();
        for s in ["hello world", "شكرا جزيلا", "", "fine 600 aed 👍"] {
            assert!(matches!(n.normalize(s), Cow::Borrowed(_)), "{s:?}");
        }
        // Trailing space trimmed: still no allocation (a borrowed prefix).
        assert!(matches!(n.normalize("abc "), Cow::Borrowed("abc")));
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = NormalizerConfig {
            hamza_seats: true,
            ..Default::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<NormalizerConfig>(&json).unwrap(), c);
        // Missing fields take defaults, so older configs keep loading.
        let partial: NormalizerConfig = serde_json::from_str(r#"{"lowercase": false}"#).unwrap();
        assert!(!partial.lowercase && partial.nfkc);
    }

    #[test]
    fn tricky_second_pass_cases() {
        let n = Normalizer::default();
        for s in [
            "@\u{200E}user",
            "#\u{200E}tag",
            "a\u{06DD}\u{0301}",
            "ww\u{200D}w.x.com",
        ] {
            let once = n.normalize(s).into_owned();
            assert_eq!(n.normalize(&once), once, "{s:?}");
        }
    }

    /// Every switch combination, from a bitmask (as `never_panics_any_config`).
    fn config_from_bits(bits: u16) -> NormalizerConfig {
        let b = |i: u16| bits & (1 << i) != 0;
        NormalizerConfig {
            nfkc: b(0),
            strip_diacritics: b(1),
            strip_tatweel: b(2),
            unify_alef: b(3),
            unify_yeh_kaf: b(4),
            ta_marbuta_to_ha: b(5),
            hamza_seats: b(6),
            ascii_digits: b(7),
            ascii_punctuation: b(8),
            strip_invisible: b(9),
            collapse_elongation: b(10),
            lowercase: b(11),
            collapse_whitespace: b(12),
            placeholders: b(13),
            split_hashtags: b(14),
        }
    }

    /// The table-driven normalizer gives exactly what the original
    /// character-by-character one gives, and borrows whenever it did (it
    /// may also borrow a trimmed or shortened slice where the original
    /// allocated).
    fn same_as_reference(cfg: &NormalizerConfig, s: &str) -> Result<(), String> {
        let new = Normalizer::new(cfg.clone()).normalize(s);
        let old = reference::Normalizer::new(cfg.clone()).normalize(s);
        if new != old {
            return Err(format!(
                "{cfg:?}\ninput {s:?}\nnew   {new:?}\nold   {old:?}"
            ));
        }
        if matches!(old, Cow::Borrowed(_)) && !matches!(new, Cow::Borrowed(_)) {
            return Err(format!("{cfg:?}\ninput {s:?}: the original borrowed"));
        }
        Ok(())
    }

    /// Message texts and FAQ questions shipped in `data/`.
    fn corpus() -> Vec<String> {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("messages"))
            .expect("data/messages")
            .map(|e| e.expect("dir entry").path())
            .collect();
        for f in ["out_of_scope.jsonl", "faq.jsonl", "faq_test.jsonl"] {
            files.push(data.join(f));
        }
        let mut texts = Vec::new();
        for f in files {
            let body = std::fs::read_to_string(&f).expect("corpus file");
            for line in body.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line).expect("json line");
                texts.extend(v["text"].as_str().map(String::from));
                if let Some(qs) = v["questions"].as_array() {
                    texts.extend(qs.iter().filter_map(|q| q.as_str().map(String::from)));
                }
            }
        }
        texts
    }

    #[test]
    fn same_as_reference_on_the_corpus() {
        let texts = corpus();
        assert!(texts.len() > 4000, "{}", texts.len());
        let default = NormalizerConfig::default();
        // Default, each switch flipped alone, all on and all off.
        let mut configs: Vec<NormalizerConfig> = vec![default.clone()];
        configs.extend((0..15).map(|i| config_from_bits(0x7FFF ^ (1 << i))));
        configs.extend((0..15).map(|i| config_from_bits(1 << i)));
        configs.extend([config_from_bits(0), config_from_bits(0x7FFF)]);
        for s in &texts {
            for cfg in &configs {
                same_as_reference(cfg, s).unwrap();
            }
            // What the second benchmark group and a second pass see.
            let once = Normalizer::default().normalize(s).into_owned();
            same_as_reference(&default, &once).unwrap();
        }
    }

    #[test]
    fn same_as_reference_on_tricky_inputs() {
        // Cased compatibility characters that NFKC would fold but the
        // NFKC pre-check lets through as pictographs, non-ASCII letters
        // that lowercase to ASCII or to two characters, elongation across
        // skipped characters, and the second-pass cases.
        let cases = [
            "🄰",
            "Ⓐ🄰b",
            "🅐🅑🅒",
            "ＡＢＣ",
            "\u{212A}ELVIN",
            "İstanbul",
            "ǅ",
            "ẞ",
            "شكراااا",
            "لاـاـاـا",
            "ههه\u{0629}",
            "aaa",
            "AAaa",
            "www.x.com",
            "WwW.x.com",
            "@\u{200E}user",
            "#\u{200E}tag",
            "a\u{06DD}\u{0301}",
            "ww\u{200D}w.x.com",
            "a  b",
            " a",
            "a ",
            "a \u{200E} b",
            "#a_b_",
            "#_",
            "##x",
            "x#",
            "a\u{0653}",
            "...",
        ];
        for s in cases {
            for bits in [0x7FFF, 0x7FFF ^ (1 << 6), 0] {
                same_as_reference(&config_from_bits(bits), s).unwrap();
            }
        }
    }

    #[test]
    fn pictograph_shortcut_matches_the_rules() {
        let configs = (0..1u16 << 15).step_by(331).chain([0, 0x7FFF]);
        for bits in configs {
            let cfg = config_from_bits(bits);
            for c in PICTOGRAPHS {
                assert_eq!(classify(&cfg, c), classify_any(&cfg, c), "{c:?} {cfg:?}");
            }
        }
    }

    #[test]
    fn output_has_no_hint_its_input_lacks() {
        // What `needs_second_pass` relies on to skip its checks.
        let cfg = config_from_bits(0x7FFF);
        let hints = ALL_HINTS | STOP;
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            let e = classify(&cfg, c);
            let m = char::from_u32(out_char(e) as u32).unwrap_or(c);
            let outputs: Vec<char> = if e & MULTI != 0 {
                m.to_lowercase().collect()
            } else {
                vec![m]
            };
            for o in outputs {
                let missing = classify(&cfg, o) & hints & !e;
                assert_eq!(missing, 0, "{c:?} -> {o:?}");
            }
        }
    }

    /// Arabic, presentation forms, invisibles, combining marks, cased
    /// non-ASCII letters, compatibility characters (full-width, enclosed
    /// and squared letters), odd whitespace, emoji and link syntax.
    const NOISE: &str = "[\u{0600}-\u{06FF}\u{FB50}-\u{FDFF}\u{FE70}-\u{FEFF}\u{200B}-\u{200F}\u{202A}-\u{202E}\u{2066}-\u{2069}\u{00AD}\u{0300}-\u{0310}\u{00C0}-\u{00FF}\u{0130}\u{1E9E}\u{212A}\u{2160}-\u{2170}\u{2460}-\u{24FF}\u{FF01}-\u{FF5E}\u{1F100}-\u{1F1FF}\u{1F600}-\u{1F64F}\u{2600}\u{2B50}\u{FE0F}\u{00A0}\u{3000}\u{2028}\u{0085}\t\n\r\u{0B}\u{0C}#@_ a-zA-Z0-9.:/+\\-]{0,60}";

    /// Runs of repeated letters across skipped characters, hashtags, and
    /// pieces of links.
    const RUNS: &str = "([aAbBwW\u{0627}\u{0628}\u{0623}\u{0629}\u{0640}\u{064E}\u{200E} _#@.:/]|https?://|www\\.|WWW\\.|x@y\\.co){0,30}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn idempotent_on_any_unicode(s in "\\PC*") {
            let n = Normalizer::default();
            let once = n.normalize(&s).into_owned();
            prop_assert_eq!(n.normalize(&once).into_owned(), once);
        }

        #[test]
        fn idempotent_on_arabic_noise(s in "[\u{0600}-\u{06FF}\u{FB50}-\u{FDFF}\u{FE70}-\u{FEFF}\u{200B}-\u{200F}#@_ a-zA-Z0-9.:/]{0,40}") {
            let n = Normalizer::default();
            let once = n.normalize(&s).into_owned();
            prop_assert_eq!(n.normalize(&once).into_owned(), once);
        }

        #[test]
        fn never_panics_any_config(s in any::<String>(), bits in any::<u16>()) {
            let b = |i: u16| bits & (1 << i) != 0;
            let n = Normalizer::new(NormalizerConfig {
                nfkc: b(0), strip_diacritics: b(1), strip_tatweel: b(2), unify_alef: b(3),
                unify_yeh_kaf: b(4), ta_marbuta_to_ha: b(5), hamza_seats: b(6), ascii_digits: b(7),
                ascii_punctuation: b(8), strip_invisible: b(9), collapse_elongation: b(10),
                lowercase: b(11), collapse_whitespace: b(12), placeholders: b(13), split_hashtags: b(14),
            });
            let _ = n.normalize(&s);
        }

        #[test]
        fn same_as_reference_any_unicode(s in "\\PC*") {
            same_as_reference(&NormalizerConfig::default(), &s).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn same_as_reference_any_string_any_config(s in any::<String>(), bits in any::<u16>()) {
            same_as_reference(&config_from_bits(bits), &s).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn same_as_reference_on_noise(s in NOISE, bits in any::<u16>()) {
            same_as_reference(&NormalizerConfig::default(), &s).map_err(TestCaseError::fail)?;
            same_as_reference(&config_from_bits(bits), &s).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn same_as_reference_on_runs_and_links(s in RUNS, bits in any::<u16>()) {
            same_as_reference(&NormalizerConfig::default(), &s).map_err(TestCaseError::fail)?;
            same_as_reference(&config_from_bits(bits), &s).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn nfkc_quick_check_matches_the_library(s in "[\u{0600}-\u{06FF}\u{0300}-\u{036F}\u{FB50}-\u{FDFF}\u{FE70}-\u{FEFF}a-z ]{0,20}|\\PC{0,20}") {
            prop_assert_eq!(nfkc_quick_not_yes(&s), is_nfkc_quick(s.chars()) != IsNormalized::Yes);
        }
    }

    /// The normalizer as it was before the table-driven pass: every rule
    /// applied one `char` at a time. Kept, unchanged but for its config
    /// lookups, as the oracle the `same_as_reference` tests compare with.
    /// Shares only the character classes, `map_char` and the link helpers,
    /// which the new code did not change.
    mod reference {
        use std::borrow::Cow;

        use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

        use super::super::{
            NormalizerConfig, is_alnum, is_diacritic, is_invisible, is_letter, is_space, is_upper,
            map_char, may_have_links, replace_links,
        };

        pub struct Normalizer {
            config: NormalizerConfig,
        }

        impl Normalizer {
            pub fn new(config: NormalizerConfig) -> Self {
                Normalizer { config }
            }

            pub fn normalize<'a>(&self, text: &'a str) -> Cow<'a, str> {
                let first = self.once(text);
                if !self.needs_second_pass(&first) {
                    return first;
                }
                let mut cur = first.into_owned();
                for _ in 0..3 {
                    let next = self.once(&cur);
                    if next == cur.as_str() {
                        break;
                    }
                    cur = next.into_owned();
                }
                Cow::Owned(cur)
            }

            fn needs_second_pass(&self, s: &str) -> bool {
                (self.config.placeholders && may_have_links(s))
                    || (self.config.nfkc && needs_nfkc(s))
                    || (self.config.split_hashtags && s.contains('#'))
            }

            fn once<'a>(&self, text: &'a str) -> Cow<'a, str> {
                let folded: Cow<'a, str> = if self.config.nfkc && needs_nfkc(text) {
                    Cow::Owned(text.nfkc().collect())
                } else {
                    Cow::Borrowed(text)
                };
                let linked: Cow<'a, str> = if self.config.placeholders && may_have_links(&folded) {
                    match replace_links(&folded) {
                        Some(s) => Cow::Owned(s),
                        None => folded,
                    }
                } else {
                    folded
                };
                match linked {
                    Cow::Borrowed(s) => self.pass(s),
                    Cow::Owned(s) => Cow::Owned(self.pass(&s).into_owned()),
                }
            }

            fn pass<'a>(&self, src: &'a str) -> Cow<'a, str> {
                let cfg = &self.config;
                let mut out = Out {
                    src,
                    same: 0,
                    buf: None,
                };
                let mut space: Option<(usize, bool)> = None;
                let mut emitted_any = false;
                let mut run_char = '\0';
                let mut run_len = 0usize;
                let mut hash_at: Option<usize> = None;
                let mut in_hashtag = false;

                for (pos, c) in src.char_indices() {
                    if cfg.strip_invisible && is_invisible(c) {
                        continue;
                    }
                    if (cfg.strip_diacritics && is_diacritic(c))
                        || (cfg.strip_tatweel && c == '\u{0640}')
                    {
                        continue;
                    }
                    if let Some(hpos) = hash_at.take() {
                        if is_alnum(c) {
                            in_hashtag = true;
                            mark_space(&mut space, hpos, false);
                        } else {
                            emit_char(
                                &mut out,
                                &mut space,
                                &mut emitted_any,
                                (&mut run_char, &mut run_len),
                                cfg.collapse_elongation,
                                Some(hpos),
                                '#',
                            );
                        }
                    }
                    let is_space = is_space(c) || (cfg.strip_invisible && c == '\u{200B}');
                    if is_space && cfg.collapse_whitespace {
                        in_hashtag = false;
                        mark_space(&mut space, pos, c == ' ');
                        run_len = 0;
                        continue;
                    }
                    if c == '#' && cfg.split_hashtags {
                        in_hashtag = false;
                        hash_at = Some(pos);
                        continue;
                    }
                    if in_hashtag {
                        if c == '_' {
                            mark_space(&mut space, pos, false);
                            run_len = 0;
                            continue;
                        }
                        if !is_alnum(c) {
                            in_hashtag = false;
                        }
                    }
                    let m = map_char(cfg, c);
                    if cfg.lowercase && is_upper(m) {
                        if m.is_ascii() {
                            emit_char(
                                &mut out,
                                &mut space,
                                &mut emitted_any,
                                (&mut run_char, &mut run_len),
                                cfg.collapse_elongation,
                                None,
                                m.to_ascii_lowercase(),
                            );
                        } else {
                            for l in m.to_lowercase() {
                                emit_char(
                                    &mut out,
                                    &mut space,
                                    &mut emitted_any,
                                    (&mut run_char, &mut run_len),
                                    cfg.collapse_elongation,
                                    None,
                                    l,
                                );
                            }
                        }
                    } else {
                        let keep = if m == c { Some(pos) } else { None };
                        emit_char(
                            &mut out,
                            &mut space,
                            &mut emitted_any,
                            (&mut run_char, &mut run_len),
                            cfg.collapse_elongation,
                            keep,
                            m,
                        );
                    }
                }
                if let Some(hpos) = hash_at {
                    emit_char(
                        &mut out,
                        &mut space,
                        &mut emitted_any,
                        (&mut run_char, &mut run_len),
                        cfg.collapse_elongation,
                        Some(hpos),
                        '#',
                    );
                }
                out.finish()
            }
        }

        fn mark_space(space: &mut Option<(usize, bool)>, pos: usize, simple: bool) {
            match space {
                None => *space = Some((pos, simple)),
                Some((_, s)) => *s = false,
            }
        }

        fn emit_char(
            out: &mut Out<'_>,
            space: &mut Option<(usize, bool)>,
            emitted_any: &mut bool,
            run: (&mut char, &mut usize),
            collapse: bool,
            keep: Option<usize>,
            c: char,
        ) {
            let (run_char, run_len) = run;
            if let Some((spos, simple)) = space.take()
                && *emitted_any
            {
                if simple {
                    out.keep(spos, ' ');
                } else {
                    out.push(' ');
                }
                *run_len = 0;
            }
            if collapse && is_letter(c) {
                if *run_len > 0 && *run_char == c {
                    *run_len += 1;
                } else {
                    *run_char = c;
                    *run_len = 1;
                }
                if *run_len == 3 && !c.is_ascii() {
                    out.pop();
                }
                if *run_len >= 3 {
                    return;
                }
            } else {
                *run_len = 0;
            }
            match keep {
                Some(pos) => out.keep(pos, c),
                None => out.push(c),
            }
            *emitted_any = true;
        }

        struct Out<'a> {
            src: &'a str,
            same: usize,
            buf: Option<String>,
        }

        impl<'a> Out<'a> {
            fn keep(&mut self, pos: usize, c: char) {
                if self.buf.is_none() && pos == self.same {
                    self.same += c.len_utf8();
                } else {
                    self.owned().push(c);
                }
            }

            fn push(&mut self, c: char) {
                self.owned().push(c);
            }

            fn pop(&mut self) {
                self.owned().pop();
            }

            fn owned(&mut self) -> &mut String {
                let (src, same) = (self.src, self.same);
                self.buf.get_or_insert_with(|| {
                    let mut s = String::with_capacity(src.len());
                    s.push_str(&src[..same]);
                    s
                })
            }

            fn finish(self) -> Cow<'a, str> {
                match self.buf {
                    Some(s) => Cow::Owned(s),
                    None => Cow::Borrowed(&self.src[..self.same]),
                }
            }
        }

        fn needs_nfkc(s: &str) -> bool {
            let b = s.as_bytes();
            let mut i = 0;
            while i < b.len() {
                let x = b[i];
                if x < 0x80 {
                    i += 1;
                    continue;
                }
                if (0xD8..=0xDB).contains(&x) && i + 1 < b.len() {
                    let cp = (u32::from(x & 0x1F) << 6) | u32::from(b[i + 1] & 0x3F);
                    if matches!(cp, 0x653..=0x655 | 0x675..=0x678) {
                        break;
                    }
                    i += 2;
                    continue;
                }
                match s[i..].chars().next() {
                    Some(
                        c @ ('\u{1F000}'..='\u{1FAFF}'
                        | '\u{2600}'..='\u{27BF}'
                        | '\u{FE0F}'
                        | '\u{200C}'..='\u{200F}'),
                    ) => {
                        i += c.len_utf8();
                    }
                    _ => break,
                }
            }
            i < b.len() && is_nfkc_quick(s.chars()) != IsNormalized::Yes
        }
    }
}
