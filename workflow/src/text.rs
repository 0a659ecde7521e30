//! Text that people other than its author read: names of files,
//! organisations, products and people, shown in the console, in PDFs a
//! court reads and in `Content-Disposition`. Besides control characters,
//! the Unicode bidirectional formatting characters are refused (or, in an
//! uploaded file's name, dropped): an override such as U+202E makes
//! `invoice<U+202E>fdp.exe` display as `invoiceexe.pdf`, so a reviewer, an
//! institution or a judge would read a name other than the one stored
//! ("Trojan Source", CVE-2021-42574). Security review H19.

/// A Unicode bidirectional formatting character: the embeddings and
/// overrides (U+202A-U+202E), the isolates (U+2066-U+2069) and the
/// implicit marks (U+200E, U+200F, U+061C).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// A character a one-line name must not hold: a control character (CR, LF,
/// NUL, ...) or a bidirectional formatting character.
pub fn unfit_in_name(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_control_characters_are_unfit_in_names() {
        for c in [
            '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}', '\n', '\0',
        ] {
            assert!(unfit_in_name(c), "{:?}", c);
        }
        for c in ['a', '张', 'ع', ' ', '-', '\u{3000}'] {
            assert!(!unfit_in_name(c), "{:?}", c);
        }
    }
}
