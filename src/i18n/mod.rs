//! Pages and e-mails in English and Japanese (DESIGN "Pages and languages").
//!
//! Messages live in catalogues, `locales/en.toml` and `locales/ja.toml`, embedded in the binary:
//! flat `key = "text"` pairs with `{name}` placeholders, which templates show with
//! `{{ "login.title"|t }}` (see `filters`). Keys ending in `_html` hold a little trusted markup;
//! every other text, and every value put into a placeholder, is escaped. ja.toml also has a
//! `[text]` table keyed by English sentences: what Rust code builds in English (error pages,
//! form errors) is translated when it is shown, so handlers keep writing one language.
//!
//! The language of a request is chosen once (`request`): an app's `ui_locales`, then the
//! person's choice (the switch on every page), then `Accept-Language`.

pub mod filters;
pub mod request;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

pub use request::{current, here};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ja,
}

/// What discovery advertises as `ui_locales_supported`.
pub const SUPPORTED: [&str; 2] = ["en", "ja"];

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ja];

    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// The language of a BCP 47 tag (`ja`, `ja-JP`, `en-GB`), if latchkey has it.
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        Lang::ALL.into_iter().find(|l| l.tag().eq_ignore_ascii_case(primary))
    }

    /// OIDC Core §3.1.2.1: `ui_locales` is space-separated, most preferred first.
    pub fn from_ui_locales(list: &str) -> Option<Self> {
        list.split(' ').find_map(Lang::parse)
    }

    /// RFC 9110 §12.5.4: the supported language with the highest weight (`q=0` is "not
    /// acceptable"); among equal weights, the one listed first.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(u16, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else { continue };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16);
            if q > 0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    /// The catalogue text for `key`, or `⟦key⟧` when a catalogue lacks it (tests look for it).
    pub fn text(self, key: &str) -> Cow<'static, str> {
        match CATALOGUES.get(self).keys.get(key) {
            Some(t) => Cow::Borrowed(t.as_str()),
            None => {
                tracing::warn!(key, lang = self.tag(), "missing message");
                Cow::Owned(format!("⟦{key}⟧"))
            }
        }
    }

    /// `text(key)` with each `{name}` replaced by its value.
    pub fn format(self, key: &str, args: &[(&str, &str)]) -> String {
        fill(&self.text(key), args)
    }

    /// An English sentence built in Rust, in this language: the `[text]` table, whose entries
    /// may have `{name}` placeholders matching any text (itself translated when the table has
    /// it); English, as is, when there is none.
    pub fn translate(self, english: &str) -> Cow<'_, str> {
        let table = &CATALOGUES.get(self).text;
        if self == Lang::En || table.is_empty() {
            return Cow::Borrowed(english);
        }
        if let Some(t) = table.exact.get(english) {
            return Cow::Borrowed(t.as_str());
        }
        for (pattern, translation) in &table.patterns {
            if let Some(args) = matches(pattern, english) {
                // A value that is itself a sentence of the table is translated too
                // ("Another browser on Windows").
                let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, table.exact.get(*v).map_or(*v, String::as_str))).collect();
                return Cow::Owned(fill(translation, &args));
            }
        }
        tracing::debug!(english, lang = self.tag(), "no translation");
        Cow::Borrowed(english)
    }
}

/// The language to write to a person in (an e-mail about their account): the one they saved,
/// else the request's.
pub fn of_user(conn: &crate::store::db::Connection, user_id: &str) -> Lang {
    match crate::store::users::locale(conn, user_id) {
        Ok(Some(saved)) => Lang::parse(&saved).unwrap_or_else(current),
        _ => current(),
    }
}

/// `key` in the request's language.
pub fn t(key: &str) -> Cow<'static, str> {
    current().text(key)
}

/// `key` in the request's language, with its placeholders filled.
pub fn tf(key: &str, args: &[(&str, &str)]) -> String {
    current().format(key, args)
}

fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The values of `pattern`'s `{name}` placeholders in `text`, if `text` has its shape (a
/// placeholder matches at least one character, up to the first occurrence of what follows it).
fn matches<'p, 't>(pattern: &'p str, text: &'t str) -> Option<Vec<(&'p str, &'t str)>> {
    let (first, mut rest) = pattern.split_once('{')?;
    let mut text = text.strip_prefix(first)?;
    let mut out = vec![];
    loop {
        let (name, after) = rest.split_once('}')?;
        match after.split_once('{') {
            Some((literal, next)) => {
                let end = text.find(literal).filter(|&e| e > 0 && !literal.is_empty())?;
                out.push((name, &text[..end]));
                text = &text[end + literal.len()..];
                rest = next;
            }
            None => {
                let value = text.strip_suffix(after).filter(|v| !v.is_empty())?;
                out.push((name, value));
                return Some(out);
            }
        }
    }
}

struct Table {
    exact: HashMap<String, String>,
    /// Entries with placeholders, longest English first so the most specific one wins.
    patterns: Vec<(String, String)>,
}

impl Table {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }
}

struct Catalogue {
    keys: HashMap<String, String>,
    text: Table,
}

struct Catalogues {
    en: Catalogue,
    ja: Catalogue,
}

impl Catalogues {
    fn get(&self, lang: Lang) -> &Catalogue {
        match lang {
            Lang::En => &self.en,
            Lang::Ja => &self.ja,
        }
    }
}

pub(crate) const SOURCES: [(Lang, &str); 2] = [(Lang::En, include_str!("../../locales/en.toml")), (Lang::Ja, include_str!("../../locales/ja.toml"))];

/// Embedded at build time and parsed once; a catalogue that does not parse is a build mistake
/// the unit tests catch.
static CATALOGUES: LazyLock<Catalogues> =
    LazyLock::new(|| Catalogues { en: parse(SOURCES[0].1).expect("locales/en.toml parses"), ja: parse(SOURCES[1].1).expect("locales/ja.toml parses") });

fn parse(source: &str) -> Result<Catalogue, String> {
    let table: toml::Table = source.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let (mut keys, mut exact, mut patterns) = (HashMap::new(), HashMap::new(), vec![]);
    for (key, value) in table {
        match value {
            toml::Value::String(s) => {
                keys.insert(key, s);
            }
            toml::Value::Table(t) if key == "text" => {
                for (english, value) in t {
                    let toml::Value::String(s) = value else { return Err(format!("text {english:?} is not a string")) };
                    if english.contains('{') {
                        patterns.push((english, s))
                    } else {
                        exact.insert(english, s);
                    }
                }
            }
            _ => return Err(format!("{key} is not a string")),
        }
    }
    patterns.sort_by_key(|(english, _): &(String, String)| std::cmp::Reverse(english.len()));
    Ok(Catalogue { keys, text: Table { exact, patterns } })
}

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    request::configure(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_in_both_catalogues_and_every_placeholder_too() {
        let (en, ja) = (&CATALOGUES.en, &CATALOGUES.ja);
        let mut missing: Vec<String> = en.keys.keys().filter(|k| !ja.keys.contains_key(*k)).map(|k| format!("ja lacks {k}")).collect();
        missing.extend(ja.keys.keys().filter(|k| !en.keys.contains_key(*k)).map(|k| format!("en lacks {k}")));
        for (key, text) in &en.keys {
            let Some(other) = ja.keys.get(key) else { continue };
            for name in placeholders(text) {
                if !other.contains(&format!("{{{name}}}")) {
                    missing.push(format!("ja {key} lacks {{{name}}}"));
                }
            }
        }
        for (english, japanese) in &ja.text.patterns {
            for name in placeholders(english) {
                if !japanese.contains(&format!("{{{name}}}")) {
                    missing.push(format!("ja text {english:?} lacks {{{name}}}"));
                }
            }
        }
        assert!(en.text.is_empty(), "English is the language of [text]'s keys: en.toml has no [text]");
        missing.sort();
        assert!(missing.is_empty(), "{missing:#?}");
    }

    fn placeholders(text: &str) -> Vec<&str> {
        text.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(n, _)| n)).collect()
    }

    /// Every key a template or Rust code names exists, so no page can show `⟦key⟧`.
    #[test]
    fn every_key_used_in_templates_and_code_exists() {
        let mut used = vec![];
        for dir in ["templates", "src"] {
            collect_keys(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut used);
        }
        assert!(used.len() >= 10, "the scan finds keys: {used:?}");
        let missing: Vec<_> = used.iter().filter(|(_, k)| !CATALOGUES.en.keys.contains_key(k)).collect();
        assert!(missing.is_empty(), "keys used but in no catalogue: {missing:#?}");
    }

    fn collect_keys(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with("src/i18n") {
                continue;
            }
            if path.is_dir() {
                collect_keys(&path, out);
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap_or_default();
            let name = path.display().to_string();
            // `"key"|t`, `"key"|tf(…)` in templates; `i18n::t("key")`, `i18n::tf("key", …)`,
            // `lang.text("key")`, `lang.format("key", …)` in code.
            for (i, _) in source.match_indices("\"|t") {
                if let Some(start) = source[..i].rfind('"') {
                    out.push((name.clone(), source[start + 1..i].to_string()));
                }
            }
            for marker in ["i18n::t(\"", "i18n::tf(\"", "lang.text(\"", "lang.format(\""] {
                for (i, _) in source.match_indices(marker) {
                    let rest = &source[i + marker.len()..];
                    if let Some(end) = rest.find('"') {
                        out.push((name.clone(), rest[..end].to_string()));
                    }
                }
            }
        }
        out.retain(|(_, k)| !k.is_empty() && !k.contains(' '));
    }

    /// The English sentences Rust code puts on error pages and forms (`ErrorPage` titles and
    /// messages, form errors) all have a Japanese translation in the `[text]` table.
    #[test]
    fn every_error_sentence_in_the_code_has_a_japanese_translation() {
        let mut sentences = vec![];
        collect_sentences(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut sentences);
        assert!(sentences.len() > 50, "the scan finds the sentences: {sentences:?}");
        let missing: Vec<_> = sentences.iter().filter(|(_, s)| Lang::Ja.translate(s) == *s).collect();
        assert!(missing.is_empty(), "no Japanese for: {missing:#?}");
    }

    fn collect_sentences(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("i18n") {
                    collect_sentences(&path, out);
                }
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap_or_default();
            let source = source.split("#[cfg(test)]").next().unwrap_or_default();
            let name = path.display().to_string();
            // (marker, how many literals may follow it, separated by commas)
            for (marker, count) in [("bad_request(", 2), ("title: ", 1), ("message: ", 1), ("retry(&pending, ", 1)] {
                for (i, _) in source.match_indices(marker) {
                    let mut rest = &source[i + marker.len()..];
                    for _ in 0..count {
                        let Some((literal, after)) = literal(rest.trim_start()) else { break };
                        out.push((name.clone(), literal));
                        rest = after.trim_start().strip_prefix(',').unwrap_or("");
                    }
                }
            }
            for (i, _) in source.match_indices("refuse(StatusCode::") {
                let rest = source[i + 19..].trim_start_matches(|c: char| c.is_ascii_uppercase() || c == '_');
                if let Some((literal, _)) = rest.strip_prefix(", ").and_then(literal) {
                    out.push((name.clone(), literal));
                }
            }
        }
    }

    /// The Rust string literal at the start of `s` (unescaped), and what follows it.
    fn literal(s: &str) -> Option<(String, &str)> {
        let mut chars = s.strip_prefix('"')?.char_indices();
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((out, &s[i + 2..])),
                '\\' => out.push(chars.next()?.1),
                c => out.push(c),
            }
        }
        None
    }

    #[test]
    fn languages_are_negotiated_as_the_rfcs_say() {
        assert_eq!(Lang::from_ui_locales("fr-CA ja en"), Some(Lang::Ja));
        assert_eq!(Lang::from_ui_locales("de"), None);
        assert_eq!(Lang::from_accept_language("ja-JP,ja;q=0.9,en;q=0.8"), Some(Lang::Ja));
        assert_eq!(Lang::from_accept_language("fr, en;q=0.5, ja;q=0.7"), Some(Lang::Ja));
        assert_eq!(Lang::from_accept_language("ja;q=0, en"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("ja;q=0"), None);
        assert_eq!(Lang::from_accept_language("*"), None);
        assert_eq!(Lang::parse("JA_jp"), Some(Lang::Ja));
    }

    #[test]
    fn english_sentences_are_translated_with_their_values() {
        assert_eq!(matches("Try again in {n} minutes.", "Try again in 5 minutes."), Some(vec![("n", "5")]));
        assert_eq!(matches("{a} and {b}", "x and y"), Some(vec![("a", "x"), ("b", "y")]));
        assert_eq!(matches("Try again in {n} minutes.", "Try again in minutes."), None);
        assert_eq!(matches("Hello {name}", "Hello"), None);
        assert_eq!(Lang::En.translate("Wrong username or password."), "Wrong username or password.");
        assert_ne!(Lang::Ja.translate("Wrong username or password."), "Wrong username or password.");
        assert!(!Lang::Ja.translate("Too many attempts. Try again in 7 minutes.").contains("minutes"));
        assert!(Lang::Ja.translate("Too many attempts. Try again in 7 minutes.").contains('7'));
        assert_eq!(Lang::Ja.text("no.such.key"), "⟦no.such.key⟧");
        assert_eq!(Lang::En.format("login.continue_html", &[("app", "Wiki")]), "to continue to <strong>Wiki</strong>");
    }
}
