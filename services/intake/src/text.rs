//! Names as the registry compares them: case and accents folded, spaces collapsed, so that
//! "Aïcha  BENNANI" and "aicha bennani" are the same key; and how alike two names are.

/// Lower case, Latin accents removed, runs of spaces, hyphens and apostrophes made one space.
pub fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'ď' | 'đ' => 'd',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
            'ğ' => 'g',
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => 'i',
            'ł' => 'l',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
            'ŕ' | 'ř' => 'r',
            'ś' | 'š' | 'ş' => 's',
            'ť' | 'ţ' => 't',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
            'ý' | 'ÿ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            '-' | '\'' | '’' | '.' | ',' => ' ',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// The search and sort key of a person: folded family name, then given name.
pub fn name_key(given: &str, family: &str) -> String {
    format!("{} {}", fold(family), fold(given)).trim().to_string()
}

/// Edit distance (insertions, deletions, substitutions), by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Why two people with the same date of birth look like the same person, if they do: the same
/// names, the names swapped, or names a typing slip apart (one edit per 8 characters, at least 1).
pub fn resemblance(given_a: &str, family_a: &str, given_b: &str, family_b: &str) -> Option<&'static str> {
    let (ga, fa, gb, fb) = (fold(given_a), fold(family_a), fold(given_b), fold(family_b));
    if ga == gb && fa == fb {
        return Some("same names and date of birth");
    }
    if ga == fb && fa == gb {
        return Some("same names, given and family swapped, and same date of birth");
    }
    let whole_a = format!("{fa} {ga}");
    let whole_b = format!("{fb} {gb}");
    let allowed = (whole_a.chars().count().max(whole_b.chars().count()) / 8).max(1);
    (edit_distance(&whole_a, &whole_b) <= allowed).then_some("names nearly the same and same date of birth")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_accents_and_spacing() {
        assert_eq!(fold("  Aïcha   BENNANI "), "aicha bennani");
        assert_eq!(fold("Jean-Baptiste N'Diaye"), "jean baptiste n diaye");
        assert_eq!(name_key("Aïcha", "Ben Nani"), "ben nani aicha");
    }

    #[test]
    fn resemblance_finds_slips_and_swaps_but_not_strangers() {
        assert!(resemblance("Awa", "Diallo", "awa", "DIALLO").is_some());
        assert!(resemblance("Awa", "Diallo", "Diallo", "Awa").is_some());
        assert!(resemblance("Mamadou", "Diallo", "Mamadou", "Dialo").is_some());
        assert!(resemblance("Awa", "Diallo", "Fatou", "Sow").is_none());
        assert!(resemblance("Awa", "Diallo", "Ama", "Dialla").is_none(), "two slips in a short name is another person");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
