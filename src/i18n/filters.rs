//! Askama filters over the catalogues. A module with templates says `use crate::i18n::filters;`
//! and its templates write:
//! - `{{ "login.title"|t }}`: a message in the request's language;
//! - `{{ "login.continue_html"|tf("app", app) }}`: with a `{name}` placeholder filled (`tf2`
//!   for two);
//! - `{{ message|tx }}`: an English sentence built in Rust (an error), translated (`tfx`: as
//!   values of a message's placeholders).
//!
//! Everything is escaped here (the output is marked safe): catalogue text, except in keys
//! ending `_html`, and always the values put into placeholders.

use super::{Lang, current, fill};
use askama::filters::Safe;
use std::fmt::Display;

#[askama::filter_fn]
pub fn t<K: Display>(key: K, _: &dyn askama::Values) -> askama::Result<Safe<String>> {
    Ok(Safe(shown(current(), &key.to_string(), &[])))
}

#[askama::filter_fn]
pub fn tf<K: Display, V: Display>(key: K, _: &dyn askama::Values, name: &str, value: V) -> askama::Result<Safe<String>> {
    Ok(Safe(shown(current(), &key.to_string(), &[(name, &value.to_string())])))
}

#[askama::filter_fn]
pub fn tf2<K: Display, V: Display, W: Display>(key: K, _: &dyn askama::Values, n1: &str, v1: V, n2: &str, v2: W) -> askama::Result<Safe<String>> {
    Ok(Safe(shown(current(), &key.to_string(), &[(n1, &v1.to_string()), (n2, &v2.to_string())])))
}

/// `tf2` whose values are English sentences from Rust code, translated too.
#[askama::filter_fn]
pub fn tfx<K: Display, V: Display, W: Display>(key: K, _: &dyn askama::Values, n1: &str, v1: V, n2: &str, v2: W) -> askama::Result<Safe<String>> {
    let lang = current();
    let (v1, v2) = (v1.to_string(), v2.to_string());
    Ok(Safe(shown(lang, &key.to_string(), &[(n1, &lang.translate(&v1)), (n2, &lang.translate(&v2))])))
}

#[askama::filter_fn]
pub fn tx<S: Display>(english: S, _: &dyn askama::Values) -> askama::Result<Safe<String>> {
    Ok(Safe(escape(&current().translate(&english.to_string()))))
}

/// A stored code in words (`"report_only"|human("state")` → "Report-only"), escaped; see
/// `admin::words`.
#[askama::filter_fn]
pub fn human<S: Display>(code: S, _: &dyn askama::Values, kind: &str) -> askama::Result<Safe<String>> {
    Ok(Safe(escape(&crate::admin::words::word(kind, &code.to_string()))))
}

/// An authenticator key in groups of four (`JBSW Y3DP EHPK …`), easier to read and type;
/// authenticator apps ignore the spaces. Escaped.
#[askama::filter_fn]
pub fn grouped<S: Display>(key: S, _: &dyn askama::Values) -> askama::Result<Safe<String>> {
    let chars: Vec<char> = key.to_string().chars().collect();
    let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    Ok(Safe(escape(&groups.join(" "))))
}

/// `key` in `lang`, as HTML, with `args` escaped into its placeholders.
pub fn shown(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let text = lang.text(key);
    let text = if key.ends_with("_html") { text.into_owned() } else { escape(&text) };
    let escaped: Vec<(&str, String)> = args.iter().map(|(n, v)| (*n, escape(v))).collect();
    let args: Vec<(&str, &str)> = escaped.iter().map(|(n, v)| (*n, v.as_str())).collect();
    fill(&text, &args)
}

/// As askama escapes what templates show, so a translated page differs only in its words.
pub fn escape(s: &str) -> String {
    askama::filters::escape(s, askama::filters::Html).map(|e| e.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_plain_text_are_escaped_and_only_html_keys_keep_markup() {
        assert_eq!(shown(Lang::En, "login.continue_html", &[("app", "<b>&")]), "to continue to <strong>&#60;b&#62;&#38;</strong>");
        assert_eq!(escape("a\"b'<"), "a&#34;b&#39;&#60;");
    }

    use crate::i18n::filters;

    #[derive(askama::Template)]
    #[template(source = r#"{{ code|human("state") }} {{ "<b>"|human("state") }}"#, ext = "html")]
    struct Human<'a> {
        code: &'a str,
    }

    #[test]
    fn codes_are_shown_as_words_and_unknown_ones_escaped() {
        use askama::Template;
        assert_eq!(Human { code: "report_only" }.render().unwrap(), "Report-only &#60;b&#62;");
    }
}
