//! Emotion and sentiment of one final utterance, from its words and its voice.
//!
//! The method (docs/ARCHITECTURE.md, "Emotion"):
//!
//! 1. **Words → sentiment.** VADER (a maintained, rule-based lexicon method that handles
//!    negation, intensifiers, "but" and exclamation marks) gives a compound score −1..1.
//! 2. **Voice → arousal.** Loudness (RMS in dB), pitch (median F0 of voiced 40 ms frames, by
//!    autocorrelation) and speaking rate (syllables per second, counted from the words as
//!    written, a numeral's digits one each) are compared with the same speaker's running
//!    baseline from earlier utterances of the call, so a loud line or a quick temper stands out
//!    against that person's own normal. The first two utterances set the baseline: one line is
//!    too little to know how a person usually sounds. Lines under six syllables are too short
//!    to read a voice from and count by their words alone.
//! 3. **Cues → which negative.** Negative lines are angry or sad; short cue lists (complaint and
//!    threat words for anger, loss and regret words for sadness) and the arousal decide which.
//! 4. **Voice → the rest.** A line whose words are neither happy nor negative (a complaint told
//!    as plain facts: "you raised my price again without a word") is angry when the voice is
//!    clearly aroused against the speaker's baseline and sad when it is clearly subdued; its
//!    sentiment then comes from the voice (down to −0.3).
//!
//! Labels: `angry`, `sad`, `happy`, `neutral`. The sentiment is VADER's compound, pushed a
//! little further from zero when the voice is aroused (or the voice's, as in 4).

use vader_sentimental::SentimentIntensityAnalyzer;

use super::asr::Word;

const RATE: f32 = 16_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Neutral,
    Happy,
    Angry,
    Sad,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Neutral => "neutral",
            Label::Happy => "happy",
            Label::Angry => "angry",
            Label::Sad => "sad",
        }
    }
}

/// The verdict on one utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Felt {
    pub label: Label,
    /// −1 (negative) … 1 (positive).
    pub sentiment: f32,
    /// How aroused the voice is against the speaker's baseline (0 = as usual).
    pub arousal: f32,
}

/// One speaker's voice so far (running means over their earlier utterances).
#[derive(Debug, Clone, Default)]
pub struct ProsodyBaseline {
    count: u32,
    loudness_db: f32,
    pitch_hz: f32,
    pitch_count: u32,
    syllables_per_sec: f32,
}

/// The voice of one utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prosody {
    pub loudness_db: f32,
    /// `None` when too little of it is voiced to tell.
    pub pitch_hz: Option<f32>,
    pub syllables_per_sec: Option<f32>,
}

/// Words that mark a negative line as anger: complaint, blame, disbelief, escalation and threat.
/// Not the topics of routine requests ("refund", "cancel"), which neutral and grieving callers
/// say as often as angry ones.
const ANGER: &[&str] = &[
    "ridiculous",
    "unacceptable",
    "outrageous",
    "furious",
    "angry",
    "mad",
    "livid",
    "fuming",
    "annoyed",
    "annoying",
    "irritated",
    "irritating",
    "frustrated",
    "frustrating",
    "sick of",
    "sick and tired",
    "fed up",
    "had enough",
    "lawyer",
    "solicitor",
    "ombudsman",
    "regulator",
    "sue",
    "complaint",
    "complain",
    "manager",
    "supervisor",
    "escalate",
    "escalated",
    "incompetent",
    "useless",
    "pathetic",
    "joke",
    "scam",
    "rip off",
    "ripped off",
    "never again",
    "worst",
    "hate",
    "demand",
    "stupid",
    "terrible",
    "awful",
    "appalling",
    "shocking",
    "disgrace",
    "disgraceful",
    "disgusting",
    "nonsense",
    "rubbish",
    "how dare",
    "the hell",
    "damn",
    "waste",
    "wasted",
    "wasting",
    "lied",
    "liar",
    "lying",
    "unbelievable",
    "kidding me",
    "are you serious",
    "you people",
    "not good enough",
    "how many times",
    "every time",
    "every single time",
    "yet again",
    "again and again",
    "still waiting",
    "excuses",
    "overcharged",
    "charged twice",
    "double charged",
    "hung up on",
    "not paying",
    "not going to pay",
    "refuse to pay",
    "take my business",
    "taking my business",
];

/// Words that mark a negative line as sadness: loss and bereavement, loneliness, illness,
/// hardship, worry, disappointment and helplessness. Whisper writes both "can't" and "cannot",
/// so both are listed.
const SADNESS: &[&str] = &[
    "sad",
    "unhappy",
    "upset",
    "miss",
    "missed",
    "missing",
    "lost",
    "losing",
    "loss",
    "lonely",
    "alone",
    "on my own",
    "by myself",
    "died",
    "dead",
    "death",
    "passed away",
    "passed on",
    "bereavement",
    "bereaved",
    "widow",
    "widowed",
    "funeral",
    "grief",
    "grieving",
    "cry",
    "crying",
    "tears",
    "heartbroken",
    "devastated",
    "depressed",
    "hopeless",
    "helpless",
    "desperate",
    "sorry to hear",
    "tired",
    "exhausted",
    "afraid",
    "scared",
    "worried",
    "worry",
    "worrying",
    "anxious",
    "stressed",
    "struggling",
    "struggle",
    "can't cope",
    "cannot cope",
    "overwhelmed",
    "hospital",
    "ill",
    "illness",
    "cancer",
    "unfortunately",
    "disappointed",
    "let down",
    "give up",
    "gave up",
    "don't know what to do",
    "do not know what to do",
    "can't afford",
    "cannot afford",
    "couldn't afford",
    "could not afford",
    "nobody",
    "gone",
];

/// Judges utterances; holds the VADER lexicon.
pub struct Emotion {
    vader: SentimentIntensityAnalyzer<'static>,
}

impl Default for Emotion {
    fn default() -> Self {
        Emotion::new()
    }
}

impl Emotion {
    pub fn new() -> Emotion {
        Emotion { vader: SentimentIntensityAnalyzer::new() }
    }

    /// The emotion of `text`, said as `samples` (16 kHz) with `words`; updates `baseline`.
    pub fn judge(&self, text: &str, samples: &[f32], words: &[Word], baseline: &mut ProsodyBaseline) -> Felt {
        let compound = self.vader.polarity_scores(text).compound as f32;
        let arousal = match Prosody::measure(samples, words) {
            Some(prosody) => {
                let arousal = baseline.arousal(&prosody);
                baseline.add(&prosody);
                arousal
            }
            None => 0.0,
        };
        classify(text, compound, arousal)
    }
}

/// Utterances of a speaker before their voice counts against their own baseline.
const BASELINE_LINES: u32 = 2;
/// Syllables a line needs before its loudness, pitch and rate say anything about the voice.
const VOICE_MIN_SYLLABLES: usize = 6;

/// The arousal beyond which the voice alone labels a line whose words are not happy: more than
/// half of "clearly louder, higher and faster" (angry) or "quieter, lower and slower" (sad) than
/// the speaker's own baseline, wider than the spread of a calm speaker's lines.
const VOICE_DECIDES: f32 = 0.6;
/// The sentiment such a line gets at full arousal (its words gave about 0).
const VOICE_SENTIMENT: f32 = 0.3;

/// The label from the words' sentiment, the cues and the voice's arousal.
pub fn classify(text: &str, compound: f32, arousal: f32) -> Felt {
    let lower = text.to_lowercase();
    let has = |cues: &[&str]| cues.iter().filter(|cue| contains_phrase(&lower, cue)).count();
    let (anger, sadness) = (has(ANGER), has(SADNESS));
    let exclaimed = text.contains('!');
    // VADER's own band: −0.05 and below is negative.
    let negative_words = compound <= -0.05;
    let label = if negative_words || (anger + sadness > 0 && compound < 0.3) {
        if sadness > anger || (anger == 0 && sadness == 0 && arousal < -0.3 && !exclaimed) {
            Label::Sad
        } else if anger > 0 || exclaimed || arousal > 0.3 || compound <= -0.4 {
            Label::Angry
        } else {
            Label::Sad
        }
    } else if compound >= 0.3 {
        Label::Happy
    } else if arousal >= VOICE_DECIDES {
        Label::Angry
    } else if arousal <= -VOICE_DECIDES {
        Label::Sad
    } else {
        Label::Neutral
    };
    let sentiment = match label {
        // The words were not negative: the voice alone made the line angry or sad.
        Label::Angry | Label::Sad if !negative_words => -VOICE_SENTIMENT * arousal.abs().min(1.0),
        _ => (compound * (1.0 + 0.25 * arousal.clamp(-1.0, 1.0).max(0.0))).clamp(-1.0, 1.0),
    };
    Felt { label, sentiment, arousal }
}

/// Whether `phrase` occurs in `text` on word boundaries. A hyphen joins words: "ill-disposed"
/// does not say "ill".
fn contains_phrase(text: &str, phrase: &str) -> bool {
    let joins = |c: char| c.is_alphanumeric() || c == '-';
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_none_or(|c| !joins(c));
        let after = text[at + phrase.len()..].chars().next().is_none_or(|c| !joins(c));
        before && after
    })
}

impl ProsodyBaseline {
    /// How far `p` lies from this speaker's usual voice: about +1 for clearly louder, higher
    /// and faster, about −1 for quieter, lower and slower; 0 until the baseline holds
    /// [`BASELINE_LINES`] utterances.
    pub fn arousal(&self, p: &Prosody) -> f32 {
        if self.count < BASELINE_LINES {
            return 0.0;
        }
        let mut score = (p.loudness_db - self.loudness_db) / 6.0;
        let mut parts = 1.0;
        if let (Some(pitch), true) = (p.pitch_hz, self.pitch_count > 0) {
            score += (pitch / self.pitch_hz - 1.0) / 0.15;
            parts += 1.0;
        }
        if let (Some(rate), true) = (p.syllables_per_sec, self.syllables_per_sec > 0.0) {
            score += (rate / self.syllables_per_sec - 1.0) / 0.25;
            parts += 1.0;
        }
        (score / parts).clamp(-2.0, 2.0)
    }

    fn add(&mut self, p: &Prosody) {
        self.count += 1;
        let n = self.count as f32;
        self.loudness_db += (p.loudness_db - self.loudness_db) / n;
        if let Some(rate) = p.syllables_per_sec {
            let prior = if self.syllables_per_sec > 0.0 { self.syllables_per_sec } else { rate };
            self.syllables_per_sec = prior + (rate - prior) / n;
        }
        if let Some(pitch) = p.pitch_hz {
            self.pitch_count += 1;
            self.pitch_hz += (pitch - self.pitch_hz) / self.pitch_count as f32;
        }
    }
}

impl Prosody {
    /// The voice of a line, or `None` for one of fewer than [`VOICE_MIN_SYLLABLES`]: too short
    /// to read a voice from ("Yes.", "Seven of clubs."), it is judged by its words alone and
    /// does not join the baseline.
    pub fn measure(samples: &[f32], words: &[Word]) -> Option<Prosody> {
        let syllables: usize = words.iter().map(|w| syllables(&w.text)).sum();
        if syllables < VOICE_MIN_SYLLABLES {
            return None;
        }
        let energy = samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32;
        let loudness_db = 10.0 * energy.max(1e-10).log10();
        let spoken_ms = match (words.first(), words.last()) {
            (Some(first), Some(last)) if last.end_ms > first.start_ms + 300 => Some(last.end_ms - first.start_ms),
            _ => None,
        };
        let syllables_per_sec = spoken_ms.map(|ms| syllables as f32 * 1000.0 / ms as f32);
        Some(Prosody { loudness_db, pitch_hz: median_pitch(samples), syllables_per_sec })
    }
}

/// Syllables in a word as written: its vowel groups (a silent final "e" aside, as in "make"
/// but not "table"), and one per digit of a numeral ("01803" is said as five words). Words per
/// second would make a line of long words, or a number Whisper writes as one token, sound slow.
fn syllables(word: &str) -> usize {
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect();
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let is_vowel = |c: &char| "aeiouy".contains(*c);
    let mut groups = letters
        .iter()
        .zip(std::iter::once(&' ').chain(&letters))
        .filter(|(c, before)| is_vowel(c) && !is_vowel(before))
        .count();
    if groups > 1 && letters.ends_with(&['e']) && !letters.ends_with(&['l', 'e']) {
        groups -= 1;
    }
    let spelled = if letters.is_empty() { 0 } else { groups.max(1) };
    spelled + digits
}

/// Median F0 over voiced 40 ms frames (normalised autocorrelation peak ≥ 0.5 between 70 and
/// 400 Hz); `None` with fewer than 3 voiced frames.
fn median_pitch(samples: &[f32]) -> Option<f32> {
    const FRAME: usize = 640;
    let (min_lag, max_lag) = ((RATE / 400.0) as usize, (RATE / 70.0) as usize);
    let mut pitches = Vec::new();
    for frame in samples.chunks_exact(FRAME).step_by(2) {
        let energy: f32 = frame.iter().map(|s| s * s).sum();
        if energy < 1e-4 * FRAME as f32 {
            continue;
        }
        let mut best = (0.0f32, 0usize);
        for lag in min_lag..=max_lag.min(FRAME - 1) {
            let (head, tail) = (&frame[..FRAME - lag], &frame[lag..]);
            let corr: f32 = head.iter().zip(tail).map(|(a, b)| a * b).sum();
            let norm = (head.iter().map(|s| s * s).sum::<f32>() * tail.iter().map(|s| s * s).sum::<f32>()).sqrt();
            let r = if norm > 0.0 { corr / norm } else { 0.0 };
            if r > best.0 {
                best = (r, lag);
            }
        }
        if best.0 >= 0.5 && best.1 > 0 {
            pitches.push(RATE / best.1 as f32);
        }
    }
    if pitches.len() < 3 {
        return None;
    }
    pitches.sort_by(f32::total_cmp);
    Some(pitches[pitches.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amplitude: f32, secs: f32) -> Vec<f32> {
        (0..(RATE * secs) as usize).map(|i| amplitude * (std::f32::consts::TAU * hz * i as f32 / RATE).sin()).collect()
    }

    #[test]
    fn pitch_of_a_tone_and_none_for_silence() {
        let pitch = median_pitch(&tone(150.0, 0.3, 1.0)).unwrap();
        assert!((pitch - 150.0).abs() < 3.0, "{pitch}");
        assert_eq!(median_pitch(&vec![0.0; 16_000]), None);
    }

    #[test]
    fn louder_higher_faster_is_aroused_against_the_speakers_own_baseline() {
        let mut baseline = ProsodyBaseline::default();
        let calm = Prosody { loudness_db: -26.0, pitch_hz: Some(120.0), syllables_per_sec: Some(3.5) };
        let heated = Prosody { loudness_db: -18.0, pitch_hz: Some(150.0), syllables_per_sec: Some(4.9) };
        assert_eq!(baseline.arousal(&heated), 0.0, "no baseline yet");
        baseline.add(&calm);
        assert_eq!(baseline.arousal(&heated), 0.0, "one line is not a baseline");
        baseline.add(&calm);
        assert!(baseline.arousal(&heated) > 1.0);
        let flat = Prosody { loudness_db: -32.0, pitch_hz: Some(105.0), syllables_per_sec: Some(2.5) };
        assert!(baseline.arousal(&flat) < -0.5);
        assert!(baseline.arousal(&calm).abs() < 1e-6);
    }

    #[test]
    fn words_and_cues_decide_the_label() {
        let e = Emotion::new();
        let label = |text: &str, arousal: f32| {
            let compound = e.vader.polarity_scores(text).compound as f32;
            classify(text, compound, arousal).label
        };
        assert_eq!(label("This is ridiculous, I want to cancel my account right now.", 0.0), Label::Angry);
        assert_eq!(label("My husband passed away last month and I miss him.", 0.0), Label::Sad);
        assert_eq!(label("Thank you so much, that was really helpful!", 0.0), Label::Happy);
        assert_eq!(label("My account number is four five six.", 0.0), Label::Neutral);
        // A negative line with no cue: the voice decides.
        assert_eq!(label("This is bad.", 0.8), Label::Angry);
        assert_eq!(label("This is bad.", -0.8), Label::Sad);
        // Plain facts: a calm voice is neutral, a clearly aroused one angry, a subdued one sad,
        // and the sentiment follows the voice.
        let facts = "You raised my price again without a word.";
        assert_eq!(label(facts, 0.3), Label::Neutral);
        assert_eq!(label(facts, 0.8), Label::Angry);
        assert_eq!(label(facts, -0.8), Label::Sad);
        let compound = e.vader.polarity_scores(facts).compound as f32;
        assert!(classify(facts, compound, 0.8).sentiment < -0.2);
        // Happy words stay happy however excited the voice.
        assert_eq!(label("Thank you so much, that was really helpful!", 1.5), Label::Happy);
    }

    #[test]
    fn a_short_line_says_nothing_of_the_voice() {
        let word = |(i, text): (usize, &&str)| Word {
            text: text.to_string(),
            start_ms: i as u64 * 300,
            end_ms: i as u64 * 300 + 280,
            confidence: 1.0,
        };
        let voiced = tone(150.0, 0.5, 1.5);
        let short: Vec<Word> = [" Seven", " of", " clubs."].iter().enumerate().map(word).collect();
        assert_eq!(Prosody::measure(&voiced, &short), None);
        let long: Vec<Word> = [" My", " account", " number", " is", " four."].iter().enumerate().map(word).collect();
        assert!(Prosody::measure(&voiced, &long).is_some_and(|p| p.pitch_hz.is_some()));
    }

    #[test]
    fn syllables_of_words_and_numerals() {
        let count = |words: &[&str]| words.iter().map(|w| syllables(w)).sum::<usize>();
        assert_eq!(count(&["make", "table", "the", "unacceptable", "I", "rhythm"]), 1 + 2 + 1 + 5 + 1 + 1);
        assert_eq!(count(&[" Queen,", "of", "clubs."]), 3);
        assert_eq!(count(&["01803"]), count(&["0", "1", "8", "0", "3"]));
        assert_eq!(count(&["—", "..."]), 0);
    }

    #[test]
    fn cues_match_whole_words_only() {
        assert!(contains_phrase("i am so mad at this", "mad"));
        assert!(!contains_phrase("i made a payment", "mad"));
        assert!(contains_phrase("he passed away.", "passed away"));
        assert!(!contains_phrase("he was not an ill-disposed young man", "ill"));
        assert!(contains_phrase("i've been ill, and", "ill"));
    }
}
