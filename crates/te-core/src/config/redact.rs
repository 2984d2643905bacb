//! Passwords kept out of every message: URLs and driver messages with each password replaced by `***`.

/// What every password is replaced with.
const HIDDEN: &str = "***";

/// The connection string `url` with every password it holds replaced by
/// `***`, whatever its form:
///
/// - `scheme://user:password@host/db`, also when the password holds `/`,
///   `:` or `@` characters or is percent-encoded (everything between the
///   first `:` of the user information and the last `@` before the query);
/// - a `password=…` query parameter (`postgres://host/db?password=…`);
/// - `password=…` in a `key=value` connection string, quoted or not.
///
/// A URL without a password comes back unchanged.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_key_values(url);
    };
    // The user information ends at the last `@` before the query string.
    let query_at = rest.find('?').unwrap_or(rest.len());
    let (authority, query) = rest.split_at(query_at);
    let authority = match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{user}:{HIDDEN}@{}", &authority[at + 1..]),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{}", redact_query(query))
}

/// `?a=b&password=…`: the value of every `password` parameter hidden.
fn redact_query(query: &str) -> String {
    let Some(params) = query.strip_prefix('?') else {
        return query.to_owned();
    };
    let params: Vec<String> = params
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if is_password_key(key) => format!("{key}={HIDDEN}"),
            _ => param.to_owned(),
        })
        .collect();
    format!("?{}", params.join("&"))
}

fn is_password_key(key: &str) -> bool {
    let key = key.trim();
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("pass")
}

/// `host=h password='x y' user=u`: the value of every `password` key hidden.
fn redact_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((key_end, value_start)) = next_password_value(rest) {
        out.push_str(&rest[..key_end]);
        out.push('=');
        out.push_str(HIDDEN);
        let value = &rest[value_start..];
        rest = &value[key_value_len(value)..];
    }
    out.push_str(rest);
    out
}

/// Where the next `password =` key ends and its value starts.
fn next_password_value(text: &str) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let start = from + found;
        let key_end = start + "password".len();
        let before_ok = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        let after = &text[key_end..];
        let spaces = after.len() - after.trim_start().len();
        if before_ok && after[spaces..].starts_with('=') {
            let value = &after[spaces + 1..];
            let value_spaces = value.len() - value.trim_start().len();
            return Some((key_end, key_end + spaces + 1 + value_spaces));
        }
        from = key_end;
    }
    None
}

/// The length of a `key=value` value: a quoted string with `\'` escapes, or
/// up to the next whitespace.
fn key_value_len(value: &str) -> usize {
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return i + 2,
                _ => {}
            }
        }
        return value.len();
    }
    value.find(char::is_whitespace).unwrap_or(value.len())
}

/// Every form in which the password of `url` could appear in a driver's
/// message: as written, percent-decoded, and the pieces a driver may cut it
/// into when it parses the URL differently (at `/`, `:`, `@`, `?`, `#`).
fn password_forms(url: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let mut add = |raw: &str| {
        for piece in std::iter::once(raw).chain(raw.split(['/', ':', '@', '?', '#', '&'])) {
            for form in [piece.to_owned(), percent_decode(piece)] {
                if !form.is_empty() && !forms.contains(&form) {
                    forms.push(form);
                }
            }
        }
    };
    if let Some((_, rest)) = url.split_once("://") {
        let (authority, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
        if let Some(at) = authority.rfind('@')
            && let Some((_, password)) = authority[..at].split_once(':')
        {
            add(password);
        }
        for param in query.trim_start_matches('?').split('&') {
            if let Some((key, value)) = param.split_once('=')
                && is_password_key(key)
            {
                add(value);
            }
        }
    } else {
        let mut rest = url;
        while let Some((_, value_start)) = next_password_value(rest) {
            let value = &rest[value_start..];
            let len = key_value_len(value);
            add(value[..len].trim_matches('\''));
            rest = &value[len..];
        }
    }
    // Longest first, so that a piece never hides part of a longer form.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `message` (e.g. a driver's error about connecting to `url`) with the URL
/// and every form of its password replaced: see [`redact_password`]. A
/// password piece shorter than 4 characters is replaced only where the
/// message quotes it (`"pa"`), so that short pieces do not mangle the rest.
pub(crate) fn scrub_password(url: &str, message: &str) -> String {
    let mut text = message.replace(url, &redact_password(url));
    for form in password_forms(url) {
        if form.chars().count() >= 4 {
            text = text.replace(&form, HIDDEN);
        } else {
            for quote in ['"', '\''] {
                text = text.replace(
                    &format!("{quote}{form}{quote}"),
                    &format!("{quote}{HIDDEN}{quote}"),
                );
            }
        }
    }
    text
}
