//! Inbound opt-out words. A person who answers STOP (in French, Arabic or English, however
//! written: case, accents, punctuation, surrounding spaces) stops receiving announcements;
//! service messages (a one-time code, a payment) still go out.

/// The words that opt a sender out, normalised (lower case, no accents, no punctuation).
const STOP_WORDS: &[&str] = &[
    // English
    "stop",
    "unsubscribe",
    "end",
    "quit",
    "stopall",
    "optout",
    "opt out",
    // French
    "arret",
    "arreter",
    "desabonner",
    "desabonnement",
    "desinscrire",
    "stop sms",
    // Arabic (Standard and Darija)
    "توقف",
    "قف",
    "الغاء",
    "إلغاء",
    "ايقاف",
    "إيقاف",
    "بلاش",
    "حبس",
];

/// Lower case, Latin accents folded, punctuation dropped, spaces collapsed.
fn normalise(text: &str) -> String {
    let folded: String = text
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            other => other,
        })
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The words that opt a sender back in.
const START_WORDS: &[&str] =
    &["start", "unstop", "subscribe", "yes start", "reprendre", "demarrer", "abonner", "ابدأ", "بدء", "تفعيل", "رجوع"];

/// Whether an inbound message asks to receive announcements again.
pub fn is_start(text: &str) -> bool {
    START_WORDS.contains(&normalise(text).as_str())
}

/// Whether an inbound message asks to stop announcements.
pub fn is_stop(text: &str) -> bool {
    let n = normalise(text);
    STOP_WORDS.contains(&n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_in_three_languages_however_written() {
        for text in ["STOP", " stop ", "Stop.", "ARRÊT", "arrêter", "Désabonner", "unsubscribe!", "توقف", " إلغاء ", "الغاء"]
        {
            assert!(is_stop(text), "{text:?}");
        }
    }

    #[test]
    fn start_opts_back_in_and_is_not_stop() {
        for text in ["START", "Reprendre", "démarrer", "ابدأ"] {
            assert!(is_start(text) && !is_stop(text), "{text:?}");
        }
        assert!(!is_start("stop") && !is_start("started"));
    }

    #[test]
    fn other_answers_are_not_opt_outs() {
        for text in ["Oui", "stop the session at 10h please", "ok", "", "شكرا", "stopper"] {
            assert!(!is_stop(text), "{text:?}");
        }
    }
}
