//! How an SMS is encoded and billed. A text made only of the GSM 03.38 alphabet travels in
//! 7-bit GSM (160 characters in one message, 153 per part when concatenated; the extension
//! characters `^{}\[~]|€` take two); any other character, Arabic for instance, makes the whole
//! text UCS-2 (UTF-16): 70 code units in one message, 67 per part, and a character outside the
//! Basic Multilingual Plane (an emoji) takes two units. Providers bill per part: counting them
//! right is what keeps a French, English or Arabic message within budget.

/// The GSM 03.38 default alphabet (one septet each).
const GSM7_BASIC: &str =
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table, reached through an escape (two septets each).
const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// The encoding a text needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// 7-bit GSM.
    Gsm7,
    /// UCS-2 / UTF-16.
    Ucs2,
}

/// What sending a text as SMS takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsSize {
    /// The encoding.
    pub encoding: Encoding,
    /// Septets (GSM 7-bit) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Messages the provider sends and bills (0 for an empty text).
    pub segments: usize,
}

/// The encoding, size and segment count of `text`.
pub fn size(text: &str) -> SmsSize {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (encoding, units, single, part) =
        if gsm { (Encoding::Gsm7, septets, 160, 153) } else { (Encoding::Ucs2, text.encode_utf16().count(), 70, 67) };
    let segments = match units {
        0 => 0,
        n if n <= single => 1,
        n => n.div_ceil(part),
    };
    SmsSize { encoding, units, segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_french_and_english_fit_gsm7() {
        let s = size("Bonjour Awa, votre dossier est accepté. Rendez-vous à 10h à Tanger.");
        assert_eq!(s.encoding, Encoding::Gsm7, "é and à are in the GSM alphabet");
        assert_eq!(s.segments, 1);
        assert_eq!(size(&"a".repeat(160)).segments, 1);
        assert_eq!(size(&"a".repeat(161)).segments, 2, "161 septets: two parts of at most 153");
        assert_eq!(size(&"a".repeat(306)).segments, 2);
        assert_eq!(size(&"a".repeat(307)).segments, 3);
        assert_eq!(size("").segments, 0);
    }

    #[test]
    fn extension_characters_take_two_septets() {
        let s = size("Montant: 1500€ [tranche 1]");
        assert_eq!(s.encoding, Encoding::Gsm7);
        assert_eq!(s.units, 26 + 3, "€, [ and ] count twice");
        assert_eq!(size(&"€".repeat(80)).segments, 1, "160 septets");
        assert_eq!(size(&"€".repeat(81)).segments, 2);
    }

    #[test]
    fn arabic_is_ucs2_and_counted_in_utf16_units() {
        let text = "مرحبا، تمت الموافقة على طلبكم";
        let s = size(text);
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(s.units, text.chars().count(), "Arabic letters are in the BMP: one unit each");
        assert_eq!(s.segments, 1);
        let seventy = "ب".repeat(70);
        assert_eq!(size(&seventy).segments, 1);
        assert_eq!(size(&format!("{seventy}ب")).segments, 2, "71 units: two parts of at most 67");
        assert_eq!(size(&"ب".repeat(134)).segments, 2);
        assert_eq!(size(&"ب".repeat(135)).segments, 3);
    }

    #[test]
    fn one_character_outside_gsm_makes_the_whole_text_ucs2() {
        let latin = "a".repeat(100);
        assert_eq!(size(&latin).segments, 1);
        let s = size(&format!("{latin}ç"));
        assert_eq!(s.encoding, Encoding::Ucs2, "ç (lower case) is not in the GSM alphabet, Ç is");
        assert_eq!(s.segments, 2);
        let emoji = size("✅👍");
        assert_eq!(emoji.units, 3, "👍 is outside the BMP: a surrogate pair");
    }
}
