//! Names people choose and text the server repeats: the one rule for display names and channel
//! names (whichever entry point they come through: OAuth consent, personal tokens, dev tokens,
//! `create_channel`, `rename`), and [`quote`], which turns untrusted text into one inert line
//! before it goes inside a system message.
//!
//! The danger both guard against is text that reads as something the server said: a newline
//! followed by `SYSTEM: …`, a right-to-left override that reverses what follows, or characters
//! that cannot be seen and make two different names look the same.

use unicode_general_category::{GeneralCategory, get_general_category};

use crate::error::DomainError;
use crate::limits::{MAX_CHANNEL_NAME_CHARS, MAX_DISPLAY_NAME_CHARS};

/// Longest untrusted text [`quote`] keeps, in characters, before it cuts and adds `…`.
pub const MAX_QUOTED_CHARS: usize = 200;

/// Why a character may not appear in a name, if it may not.
///
/// Refused: control characters (`Cc`), format characters (`Cf`: bidi overrides and isolates,
/// zero-width spaces and joiners, soft hyphens, tag characters…), line and paragraph separators,
/// and the letters that render as nothing (Hangul fillers, the braille blank).
fn forbidden_in_name(c: char) -> Option<&'static str> {
    match get_general_category(c) {
        GeneralCategory::Control => Some("control characters (such as newlines or tabs)"),
        GeneralCategory::Format => Some(
            "invisible formatting characters (bidi overrides or isolates, zero-width characters)",
        ),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("line or paragraph separators")
        }
        _ if matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
        ) =>
        {
            Some("blank filler characters")
        }
        _ => None,
    }
}

/// Trims `raw` and checks it is a name someone can read: 1 to `max` characters, nothing
/// invisible, nothing that moves the text around it.
fn check_name(
    field: &'static str,
    noun: &'static str,
    limit_what: &'static str,
    max: usize,
    raw: &str,
) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid(field, format!("the {noun} is empty")));
    }
    if name.chars().count() > max {
        return Err(DomainError::LimitExceeded {
            what: limit_what,
            limit: max,
        });
    }
    if let Some((c, why)) = name
        .chars()
        .find_map(|c| forbidden_in_name(c).map(|why| (c, why)))
    {
        return Err(DomainError::invalid(
            field,
            format!(
                "the {noun} contains U+{:04X}; {noun}s cannot contain {why}",
                u32::from(c)
            ),
        ));
    }
    Ok(name.to_owned())
}

/// A display name as people type it: trimmed, 1 to [`MAX_DISPLAY_NAME_CHARS`] characters, no
/// control, format or invisible characters.
pub fn check_display_name(raw: &str) -> Result<String, DomainError> {
    check_name(
        "display_name",
        "display name",
        "display name (characters)",
        MAX_DISPLAY_NAME_CHARS,
        raw,
    )
}

/// A channel name: trimmed, 1 to [`MAX_CHANNEL_NAME_CHARS`] characters, the same characters
/// as display names.
pub fn check_channel_name(raw: &str) -> Result<String, DomainError> {
    check_name(
        "name",
        "channel name",
        "channel name (characters)",
        MAX_CHANNEL_NAME_CHARS,
        raw,
    )
}

/// The first character of `text` that no name may hold (see [`check_display_name`]), for
/// names that other rules shape, such as an OAuth client's.
pub fn hidden_character(text: &str) -> Option<char> {
    text.chars().find(|&c| forbidden_in_name(c).is_some())
}

/// Untrusted text as it may appear inside a system message: in double quotes, on one line, at
/// most [`MAX_QUOTED_CHARS`] characters (then `…`). Quotes and backslashes are escaped, and
/// every control, format or separator character is written as an escape (`\n`, `\u{202e}`),
/// so the text cannot end the quote, start a line of its own, or reorder what follows. The
/// exact value belongs in the message's `data`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_QUOTED_CHARS) + 2);
    out.push('"');
    for (index, c) in text.chars().enumerate() {
        if index == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if forbidden_in_name(c).is_some() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn plain_names_pass_trimmed() {
        assert_eq!(
            check_display_name("  Ada Lovelace ").unwrap(),
            "Ada Lovelace"
        );
        assert_eq!(check_display_name("Zoë 山田 🦀").unwrap(), "Zoë 山田 🦀");
        assert_eq!(check_channel_name(" Friday game ").unwrap(), "Friday game");
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        for bad in [
            "alice\u{202E}nimda",     // right-to-left override
            "alice\u{2066}x\u{2069}", // isolates
            "al\u{200B}ice",          // zero-width space
            "al\u{200D}ice",          // zero-width joiner
            "\u{FEFF}alice",          // byte-order mark
            "ali\u{00AD}ce",          // soft hyphen
            "alice\u{E0041}",         // tag character
            "alice\nSYSTEM: x",       // newline
            "alice\u{2028}x",         // line separator
            "a\u{3164}b",             // Hangul filler
        ] {
            for check in [check_display_name, check_channel_name] {
                let error = check(bad).expect_err(bad);
                assert_eq!(error.code(), ErrorCode::InvalidArgument, "{bad:?}");
                assert!(error.to_string().contains("U+"), "{error}");
            }
        }
    }

    #[test]
    fn empty_and_long_names_are_refused() {
        assert_eq!(
            check_display_name("   ").unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
        let long = "x".repeat(MAX_DISPLAY_NAME_CHARS + 1);
        assert_eq!(
            check_display_name(&long).unwrap_err().code(),
            ErrorCode::LimitExceeded
        );
        assert!(check_channel_name(&long).is_ok());
    }

    #[test]
    fn quoted_text_stays_on_one_line_inside_its_quotes() {
        let forged = "Error: \n\nSYSTEM: carol was made admin \"now\" \\ \u{202E}";
        let quoted = quote(forged);
        assert!(!quoted.contains('\n') && !quoted.contains('\u{202E}'));
        assert_eq!(
            quoted,
            r#""Error: \n\nSYSTEM: carol was made admin \"now\" \\ \u{202e}""#
        );
        let long = quote(&"y".repeat(MAX_QUOTED_CHARS * 3));
        assert_eq!(long.chars().count(), MAX_QUOTED_CHARS + 3);
        assert!(long.ends_with("…\""));
    }
}
