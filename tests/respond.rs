//! The responder end to end, as the ticketing service and the CLI load it:
//! the shipped model, FAQ, calibration set and reply templates.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use mujib::{FaqCase, Language, ReplyTemplates, Responder, faq_report};
use proptest::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

static RESPONDER: LazyLock<Responder> = LazyLock::new(|| {
    let r = root();
    Responder::load_calibrated(
        r.join("models/mujib.model"),
        r.join("data/faq.jsonl"),
        r.join("data/replies.json"),
        r.join("data/faq_calibration.jsonl"),
    )
    .expect("shipped responder")
});

/// The rows of one of the repository's JSONL files.
fn jsonl_rows(file: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(root().join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

static REPLIES: LazyLock<ReplyTemplates> =
    LazyLock::new(|| ReplyTemplates::load(root().join("data/replies.json")).unwrap());

/// Floors a little under what the shipped FAQ measures (393 cases): top-1
/// 0.948, MRR 0.971, answered correctly 0.939, no-match precision 0.89,
/// recall 0.74 and F1 0.81, so a change that loses several queries fails
/// here. The learned cut sits where the calibration set's out-of-fold F1
/// peaks, a flat peak: small changes to the index or the calibration file
/// move it between about 0.63 and 0.80, which trades test precision
/// against recall along the frontier (at a cut of 0.50: P 0.74, R 0.88; at
/// 0.85: P 0.88, R 0.71; rules learned from ten 90% subsets of the
/// calibration file gave cuts of 0.69–0.84, P 0.81–0.87 and R 0.68–0.80).
/// So precision and recall get loose floors and their F1, which a move
/// along the frontier barely changes, a tight one. The no-match
/// targets (0.85 / 0.75) are higher; `mujib faq-eval --sweep` reports
/// where the FAQ stands.
#[test]
fn faq_test_set_scores_stay_above_their_floors() {
    let cases = FaqCase::load(root().join("data/faq_test.jsonl")).unwrap();
    let scored: Vec<_> = cases
        .iter()
        .map(|c| (c.expected.clone(), RESPONDER.faq_lookup(&c.text, 10)))
        .collect();
    let report = faq_report(&scored, RESPONDER.faq().threshold());
    eprintln!("{}", report.to_text());
    assert!(report.answerable >= 250 && report.unanswerable >= 50);
    assert!(report.top1_accuracy >= 0.92, "{}", report.to_text());
    assert!(report.mrr >= 0.94, "{}", report.to_text());
    assert!(report.answered_correctly >= 0.90, "{}", report.to_text());
    let (p, r) = (report.no_match_precision, report.no_match_recall);
    assert!(p >= 0.74, "{}", report.to_text());
    assert!(r >= 0.62, "{}", report.to_text());
    assert!(2.0 * p * r / (p + r) >= 0.75, "{}", report.to_text());
}

/// Arabizi writers reach the right entry, through the FAQ's Arabizi
/// phrasings (about 7 an entry) and, since Arabizi spelling varies so
/// much, through a transliteration to Arabic script that reaches the
/// Arabic ones.
/// The calibration file's 374 answerable Arabizi messages, which teach
/// the no-match rule but never the ranking, measure it: top-1 0.778 with
/// the transliteration of scheme 2, 0.813 with scheme 3 (short vowels
/// dropped inside words, 8 read as ق), 0.821 once the FAQ had 40
/// phrasings an entry. The floor sits above scheme 2.
#[test]
fn arabizi_messages_reach_their_entries() {
    let (mut n, mut right) = (0, 0);
    for v in jsonl_rows("data/faq_calibration.jsonl") {
        let (Some(expected), Some("arabizi")) = (v["expected"].as_str(), v["lang"].as_str()) else {
            continue;
        };
        n += 1;
        let found = RESPONDER.faq_matches(v["text"].as_str().unwrap(), 1);
        right += usize::from(found.first().is_some_and(|m| m.id == expected));
    }
    let top1 = right as f64 / n as f64;
    assert!(n >= 300, "{n} answerable Arabizi messages");
    assert!(top1 >= 0.79, "top-1 {top1:.3} ({right} of {n})");
}

/// The FAQ on its own (as a library user may call it) stays silent on
/// chatter and spam: the calibration set teaches it with off-topic
/// messages, and without them only 16% of the out-of-scope set was
/// rejected. Measured at 0.75 over all 546 when this floor was set, 0.71
/// over all 706 with the 1,270-message calibration set, 0.69 with the
/// 1,670-message set, 0.77 with the 2,670-message set and the coverage
/// prior, 0.78 with the gap, 0.80 with the 3,070-message set, 0.83 with
/// 40 phrasings an entry (was 34), and 0.76 once the neighbours had 5
/// more each, which moved the learned cut from 0.69 to 0.79.
#[test]
fn faq_alone_rejects_most_out_of_scope_messages() {
    let (mut n, mut rejected) = (0, 0);
    for v in jsonl_rows("data/out_of_scope.jsonl") {
        n += 1;
        if RESPONDER
            .faq()
            .lookup(v["text"].as_str().unwrap(), &[], 1)
            .no_match
        {
            rejected += 1;
        }
    }
    let share = rejected as f64 / n as f64;
    assert!(share >= 0.65, "{rejected} of {n}");
}

#[test]
fn emergencies_lead_with_999_in_the_writers_language() {
    for (text, lang, prefix) in [
        (
            "حادث الحين على شارع الامارات وفي ناس مصابين وواحد ما يتحرك",
            Language::Arabic,
            &REPLIES.emergency_prefix.ar,
        ),
        (
            "there's a man with a knife chasing people in the car park of the mall right now",
            Language::English,
            &REPLIES.emergency_prefix.en,
        ),
        (
            "wldi dayi3 fi el mall mn rob3 sa3a w ma ligenah, 3mrh 5 snin",
            Language::Arabizi,
            &REPLIES.emergency_prefix.ar,
        ),
    ] {
        let r = RESPONDER.respond(text);
        assert!(r.urgent, "{text}: {r:?}");
        assert!(["traffic", "criminal"].contains(&r.label.as_str()), "{r:?}");
        assert_eq!(r.language, lang, "{text}");
        let reply = r.reply.expect("an urgent message always gets a reply");
        assert!(reply.starts_with(prefix.as_str()), "{reply}");
        assert!(reply.contains("999"), "{reply}");
    }
}

#[test]
fn past_events_are_not_emergencies() {
    let r = RESPONDER.respond("I had a small accident last week, nobody was hurt. How do I get the police report for my insurance?");
    assert!(!r.urgent, "{r:?}");
    assert_eq!(r.label, "traffic");
}

#[test]
fn faq_answers_come_in_the_writers_language() {
    // "مخالفة السرعة" ("the speeding fine") here reaches the speed-limit
    // entry since the FAQ gained 570 phrasings: a known limitation of
    // lexical matching (see the README), not of the reply's language.
    let ar = RESPONDER.respond("ابغى ادفع مخالفة الرادار اللي جتني امس");
    let en = RESPONDER.respond("how do I pay my traffic fines?");
    for r in [&ar, &en] {
        assert_eq!(r.faq_id.as_deref(), Some("traffic.pay_fine"), "{r:?}");
        assert!(!r.needs_human);
    }
    let entry = RESPONDER
        .faq()
        .entries()
        .iter()
        .find(|e| e.id == "traffic.pay_fine")
        .unwrap();
    assert_eq!(ar.reply.as_deref(), Some(entry.answer.ar.as_str()));
    assert_eq!(en.reply.as_deref(), Some(entry.answer.en.as_str()));
}

#[test]
fn out_of_scope_and_empty_messages_go_to_a_person() {
    for text in [
        "who won the football match last night? barcelona played so badly",
        "",
        "   ",
        "🙂🙂🙂",
    ] {
        let r = RESPONDER.respond(text);
        assert!(r.needs_human, "{text:?}: {r:?}");
        assert!(r.faq_id.is_none(), "{text:?}: {r:?}");
        assert!(r.handoff_reason.is_some());
        if !r.urgent {
            // The holding reply, not an answer.
            let holding = [&REPLIES.holding.ar, &REPLIES.holding.en];
            assert!(
                r.reply.as_ref().is_none_or(|t| holding.contains(&t)),
                "{r:?}"
            );
        }
    }
}

/// `text` goes to a person for `reason`, urgent, with a holding reply that
/// starts with the 999 line and, like every hand-off, no FAQ answer.
fn assert_urgent_handoff(text: &str, reason: &str) {
    let r = RESPONDER.respond(text);
    assert!(r.urgent && r.needs_human, "{text:?}: {r:?}");
    assert_eq!(r.handoff_reason.as_deref(), Some(reason), "{text:?}");
    assert!(r.faq_id.is_none(), "{text:?}: {r:?}");
    let reply = r.reply.expect("a holding reply by default");
    assert!(
        reply.starts_with(&REPLIES.emergency_prefix.en)
            || reply.starts_with(&REPLIES.emergency_prefix.ar),
        "{text:?}: {reply}"
    );
}

/// The replies' self-harm cues: intent to end one's life, in each
/// language, makes a message urgent and a person's to answer, whatever
/// the label; the same words inside other words do not.
#[test]
fn self_harm_goes_to_a_person_with_999_first() {
    for text in [
        "he keeps threatening to send the pictures to my family, I just want to end my life",
        "Ana ta3bana wayed, wallah ba2tel nafsi",
        "ابتزني واحد بصوري والله بنتحر اذا نشرها",
        "خويي يقول بيذبح عمره... لا، قال أبي أموت وسكر التلفون",
        "my brother texted that he will kill himself tonight, he is not answering",
    ] {
        assert_urgent_handoff(text, "self_harm");
    }
    for text in [
        // "we cannot move", "the road of my life".
        "واقفين ساعة عند الدوار وما نتحرك",
        "كل يوم نفس الزحمة في طريق حياتي",
    ] {
        assert!(!handed_off_for_self_harm(text), "{text:?}");
    }
}

fn handed_off_for_self_harm(text: &str) -> bool {
    RESPONDER.respond(text).handoff_reason.as_deref() == Some("self_harm")
}

/// Whether a message goes to a person for a cue of the reply templates.
fn handed_off_for_a_cue(text: &str) -> bool {
    matches!(
        RESPONDER.respond(text).handoff_reason.as_deref(),
        Some("self_harm" | "distress")
    )
}

/// A message that is nothing but a call for help is urgent and a
/// person's: the classifier had read "help" as thanks (0.92) and
/// "الحقوني" ("come and save me") as out of scope, with no 999 line. A
/// call inside a longer message decides nothing.
#[test]
fn a_bare_call_for_help_goes_to_a_person_with_999_first() {
    for text in [
        "help",
        "HELP!!! 🙏",
        "@DubaiPoliceHQ please help",
        "الحقووووني",
        "النجدة!!",
        "ساعدوني ساعدوني",
        "S.O.S",
        "sa3dooni",
        "حريق",
    ] {
        assert_urgent_handoff(text, "distress");
    }
    for text in [
        "can you help me renew my ID",
        "thanks for your help",
        "يا جماعة ساعدوني كيف اجدد الهوية",
        "help desk number?",
    ] {
        let r = RESPONDER.respond(text);
        assert_ne!(r.handoff_reason.as_deref(), Some("distress"), "{text:?}");
    }
}

/// The cues stay specific: over every hand-written message (corpus,
/// out-of-scope set, FAQ calibration sets; 16,693), the only ones the
/// self-harm cues fire on are emergencies the corpus flags urgent, and
/// the distress calls fire on none.
#[test]
fn cues_fire_on_no_ordinary_message() {
    let corpus = mujib::load_labelled(&root().join("data/messages")).unwrap();
    let mut fired = 0;
    for m in &corpus.messages {
        if handed_off_for_a_cue(&m.text) {
            fired += 1;
            assert_eq!(m.urgent, Some(true), "{:?}", m.text);
        }
    }
    assert!(fired <= 3, "{fired}");
    let others = [
        "data/out_of_scope.jsonl",
        "data/faq_calibration.jsonl",
        "data/faq_calibration_neighbours.jsonl",
    ];
    for file in others {
        for v in jsonl_rows(file) {
            let t = v["text"].as_str().unwrap();
            assert!(!handed_off_for_a_cue(t), "{file}: {t:?}");
        }
    }
}

/// The error of a responder built with the shipped reply templates
/// changed by `edit`.
fn replies_error(edit: impl FnOnce(&mut ReplyTemplates)) -> String {
    let r = root();
    let clf = mujib::Classifier::load(r.join("models/mujib.model")).unwrap();
    let faq = mujib::FaqIndex::load_for(r.join("data/faq.jsonl"), &clf, None).unwrap();
    let mut replies = REPLIES.clone();
    edit(&mut replies);
    match Responder::new(clf, faq, replies, Default::default()) {
        Err(err) => err.to_string(),
        Ok(_) => panic!("the changed reply templates were accepted"),
    }
}

/// A self-harm cue that normalizes to nothing would match every message,
/// a distress call without a word none: both are load errors naming them.
#[test]
fn cues_and_calls_that_normalize_to_nothing_are_errors() {
    let err = replies_error(|r| r.self_harm_cues.push("ـــ".into()));
    assert!(
        err.contains("self-harm cue") && err.contains("ـــ"),
        "{err}"
    );
    let err = replies_error(|r| r.distress_calls.push("!!! 🆘".into()));
    assert!(err.contains("distress call") && err.contains("🆘"), "{err}");
}

#[test]
fn json_field_names_are_stable() {
    let r = RESPONDER.respond("شكرا لكم على سرعة الاستجابة");
    let v = serde_json::to_value(&r).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "confidence",
            "faq_id",
            "faq_score",
            "handoff_reason",
            "label",
            "language",
            "needs_human",
            "reply",
            "top3",
            "urgent"
        ]
    );
    assert_eq!(v["label"], "thanks");
    assert_eq!(v["top3"].as_array().unwrap().len(), 3);
}

#[test]
fn one_responder_serves_many_threads_with_the_same_answers() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Responder>();
    let texts: Vec<String> = FaqCase::load(root().join("data/faq_test.jsonl"))
        .unwrap()
        .into_iter()
        .map(|c| c.text)
        .take(120)
        .collect();
    let alone: Vec<_> = texts.iter().map(|t| RESPONDER.respond(t)).collect();
    let together: Vec<Vec<_>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| texts.iter().map(|t| RESPONDER.respond(t)).collect()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answers in together {
        assert_eq!(answers, alone);
    }
}

/// The shipped responder counts a message once for the classifier and the
/// FAQ (`FaqIndex::load_for`); a responder over an FAQ that counts on its
/// own must give the same labels and FAQ ranking, to float rounding in the
/// score, and the same responses wherever their no-match rules agree (5 of
/// these 397 messages differ).
#[test]
fn counting_once_answers_as_counting_twice() {
    use mujib::{Classifier, FaqIndex, ResponderConfig};
    let r = root();
    let classifier = Classifier::load(r.join("models/mujib.model")).unwrap();
    let separate = FaqIndex::load_calibrated(
        r.join("data/faq.jsonl"),
        classifier.normalizer(),
        r.join("data/faq_calibration.jsonl"),
    )
    .unwrap();
    let twice = Responder::new(
        classifier,
        separate,
        REPLIES.clone(),
        ResponderConfig::default(),
    )
    .unwrap();
    let mut texts: Vec<String> = FaqCase::load(r.join("data/faq_test.jsonl"))
        .unwrap()
        .into_iter()
        .map(|c| c.text)
        .collect();
    texts.extend(
        [
            "3ndi mo5alfa radar kaif adfa3ha",
            "ابي اجدد الهويه ✨ plz",
            "",
            "🙏🙏",
        ]
        .map(String::from),
    );
    let (mut answered, mut disagree) = (0, 0);
    for t in &texts {
        let (a, b) = (RESPONDER.respond(t), twice.respond(t));
        assert_eq!(a.label, b.label, "{t}");
        assert_eq!(a.urgent, b.urgent, "{t}");
        assert!((a.confidence - b.confidence).abs() < 1e-5, "{t}");
        // Both rank the FAQ alike...
        let (la, lb) = (RESPONDER.faq_lookup(t, 3), twice.faq_lookup(t, 3));
        assert_eq!(la.matches.len(), lb.matches.len(), "{t}");
        for (x, y) in la.matches.iter().zip(&lb.matches) {
            assert_eq!(x.id, y.id, "{t}");
            assert!(
                (x.score - y.score).abs() < 1e-4,
                "{t}: {} vs {}",
                x.score,
                y.score
            );
        }
        // ...but their no-match rules read different features: counted
        // once, the rule also reads the classifier's (word pairs,
        // subwords), so the two may disagree on a message near the cut.
        if la.no_match != lb.no_match {
            disagree += 1;
            continue;
        }
        assert_eq!(a.faq_id, b.faq_id, "{t}");
        assert_eq!(a.reply, b.reply, "{t}");
        if a.faq_id.is_some() {
            answered += 1;
        }
    }
    assert!(answered > 250, "only {answered} answered");
    assert!(
        disagree * 20 <= texts.len(),
        "{disagree} of {} no-match decisions differ",
        texts.len()
    );
}

#[test]
fn calibration_file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cal.jsonl");
    std::fs::write(
        &bad,
        "{\"text\": \"how do i pay a fine\", \"expected\": \"traffic.pay_fine\"}\n{\"text\": \"x\", \"expected\": \"traffic.no_such_entry\"}\n",
    )
    .unwrap();
    let r = root();
    let err = Responder::load(
        r.join("models/mujib.model"),
        r.join("data/faq.jsonl"),
        r.join("data/replies.json"),
    )
    .unwrap()
    .with_faq_calibration(&bad)
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cal.jsonl") && err.contains(":2") && err.contains("traffic.no_such_entry"),
        "{err}"
    );
    let missing = FaqCase::load(Path::new("no/such/file.jsonl")).unwrap_err();
    assert!(
        missing.to_string().contains("no/such/file.jsonl"),
        "{missing}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Any string gets a response, and a response is always either
    /// answered or handed off, never silent unless handed off.
    #[test]
    fn any_string_gets_a_coherent_response(s in "\\PC{0,300}") {
        let r = RESPONDER.respond(&s);
        prop_assert!(r.confidence.is_finite());
        prop_assert!(r.needs_human || r.reply.is_some());
        prop_assert_eq!(r.needs_human, r.handoff_reason.is_some());
        if r.urgent {
            prop_assert!(r.reply.as_deref().is_some_and(|t| t.contains("999")));
        }
    }
}
