//! Lists that scale: search, sort, paging with a visible total, every filter kept in the URL.
//!
//! Every console list (apps, users, groups, policies, locations, sign-in logs, audit log, keys)
//! is read the same way:
//!
//! ```ignore
//! // 1. The list's sortable columns: the key in the URL, and the SQL it stands for. Only these
//! //    'static strings ever reach ORDER BY; a `sort` the list lacks falls back to the default.
//! const COLUMNS: Columns = Columns {
//!     sorts: &[("username", "username COLLATE NOCASE"), ("created", "created_at")],
//!     default: ("username", Dir::Asc),
//!     tiebreak: "id",
//! };
//!
//! // 2. In the handler: parse `q`, `sort`, `dir`, `page` and keep the list's own filters.
//! let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
//! let mut query = ListQuery::parse("/admin/users", &params, &COLUMNS);
//! query.keep("status", &status);              // any other filter, so pager links keep it
//!
//! // 3. Count, then read one page (the store function appends `window.sql()`, and matches
//! //    `like(q)` with `LIKE ?n ESCAPE '\'`).
//! let total = store::directory::count_users(&conn, query.search())?;
//! query.clamp(total);                         // page 999 of 3 shows page 3
//! let rows = store::directory::users_page(&conn, query.search(), &query.window())?;
//! let pager = query.pager(total);
//! ```
//!
//! The page struct has a field named `pager`; its template writes sortable headers as
//! `<th scope="col" aria-sort="{{ pager.aria_sort("username") }}"><a href="{{ pager.sort_href("username") }}">…</a></th>`,
//! keeps the sort in the filter form with
//! `{% for (k, v) in pager.sort_fields() %}<input type="hidden" name="{{ k }}" value="{{ v }}">{% endfor %}`,
//! and ends the table with `{% include "admin/pager.html" %}` ("Showing 51–100 of 10,000",
//! first / previous / next / last). Nothing is ever cut off without the total saying so.

use crate::web::params::Params;

/// Rows on one page.
pub const PAGE_SIZE: i64 = 50;

/// Longest search text taken from a URL.
const MAX_SEARCH: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Dir::Asc => "ASC",
            Dir::Desc => "DESC",
        }
    }

    fn flip(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
}

/// A list's sortable columns: the allow-list that ORDER BY is built from.
pub struct Columns {
    /// (key in the URL, SQL expression).
    pub sorts: &'static [(&'static str, &'static str)],
    /// The sort when the URL names none (or one not in `sorts`).
    pub default: (&'static str, Dir),
    /// A unique column added after the sort, so that rows never move between pages.
    pub tiebreak: &'static str,
}

impl Columns {
    fn find(&self, key: &str) -> Option<(&'static str, &'static str)> {
        self.sorts.iter().find(|(k, _)| *k == key).copied()
    }
}

/// What a list shows: search text, sort, page, and the list's own filters.
#[derive(Debug, Clone)]
pub struct ListQuery {
    path: String,
    q: String,
    sort: &'static str,
    dir: Dir,
    page: i64,
    order: &'static str,
    tiebreak: &'static str,
    default: (&'static str, Dir),
    filters: Vec<(String, String)>,
}

impl ListQuery {
    /// Reads `q`, `sort`, `dir` and `page` from a query string's parameters. Anything unknown
    /// or malformed falls back to the default: a list never fails to show.
    pub fn parse(path: impl Into<String>, params: &Params, columns: &Columns) -> Self {
        let (default_key, default_dir) = columns.default;
        let (sort, order) =
            params.get("sort").and_then(|k| columns.find(k)).or_else(|| columns.find(default_key)).expect("the default sort is one of the list's columns");
        let dir = match params.get("dir") {
            Some("asc") => Dir::Asc,
            Some("desc") => Dir::Desc,
            _ if sort == default_key => default_dir,
            _ => Dir::Asc,
        };
        let page = params.get("page").and_then(|p| p.parse::<i64>().ok()).filter(|p| *p >= 1).unwrap_or(1);
        let q: String = params.get("q").unwrap_or("").trim().chars().take(MAX_SEARCH).collect();
        Self { path: path.into(), q, sort, dir, page, order, tiebreak: columns.tiebreak, default: columns.default, filters: vec![] }
    }

    /// Keeps another filter of the list in every link it makes (ignored when empty).
    pub fn keep(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.filters.push((name.to_string(), value.to_string()));
        }
    }

    /// The search text, if any.
    pub fn search(&self) -> Option<&str> {
        Some(self.q.as_str()).filter(|q| !q.is_empty())
    }

    /// The search text as typed (for the search field).
    pub fn q(&self) -> &str {
        &self.q
    }

    pub fn page(&self) -> i64 {
        self.page
    }

    /// The sort's key (one of the list's columns).
    pub fn sort_key(&self) -> &'static str {
        self.sort
    }

    pub fn ascending(&self) -> bool {
        self.dir == Dir::Asc
    }

    /// A page past the end shows the last one.
    pub fn clamp(&mut self, total: i64) {
        self.page = self.page.min(pages(total));
    }

    /// The ORDER BY, LIMIT and OFFSET of this page.
    pub fn window(&self) -> Window {
        let tiebreak = if self.tiebreak.is_empty() { String::new() } else { format!(", {} {}", self.tiebreak, self.dir.sql()) };
        Window { order_by: format!("{} {}{tiebreak}", self.order, self.dir.sql()), limit: PAGE_SIZE, offset: (self.page - 1) * PAGE_SIZE }
    }

    /// Every matching row at once (exports): the same order, no LIMIT.
    pub fn everything(&self) -> Window {
        Window { limit: i64::MAX, offset: 0, ..self.window() }
    }

    /// The paging and sorting links for a list of `total` rows.
    pub fn pager(&self, total: i64) -> Pager {
        let first = if total == 0 { 0 } else { ((self.page - 1) * PAGE_SIZE + 1).min(total) };
        let last = (self.page * PAGE_SIZE).min(total);
        Pager { query: self.clone(), total, first, last, pages: pages(total) }
    }

    /// This list's URL with `sort`, `dir` and `page` replaced.
    fn href(&self, sort: &str, dir: Dir, page: i64) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            s.append_pair("q", &self.q);
        }
        for (k, v) in &self.filters {
            s.append_pair(k, v);
        }
        if (sort, dir) != self.default {
            s.append_pair("sort", sort).append_pair("dir", dir.as_str());
        }
        if page > 1 {
            s.append_pair("page", &page.to_string());
        }
        let query = s.finish();
        if query.is_empty() { self.path.clone() } else { format!("{}?{query}", self.path) }
    }
}

fn pages(total: i64) -> i64 {
    ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1)
}

/// One page's ORDER BY / LIMIT / OFFSET. Its SQL holds only allow-listed column expressions and
/// integers, so store functions may append it to their statement.
#[derive(Debug, Clone)]
pub struct Window {
    order_by: String,
    pub limit: i64,
    pub offset: i64,
}

impl Window {
    /// ` ORDER BY … LIMIT … OFFSET …`, to append to a SELECT.
    pub fn sql(&self) -> String {
        format!(" ORDER BY {} LIMIT {} OFFSET {}", self.order_by, self.limit, self.offset)
    }
}

/// `q` as a LIKE pattern matching it anywhere, its wildcards taken literally: use with
/// `LIKE ?n ESCAPE '\'`.
pub fn like(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A list's total and links: "Showing 51–100 of 10,000", first / previous / next / last, and
/// the headers' sort links. Templates include `admin/pager.html`.
#[derive(Debug, Clone)]
pub struct Pager {
    query: ListQuery,
    pub total: i64,
    /// The 1-based positions of the first and last row shown (0, 0 when there are none).
    pub first: i64,
    pub last: i64,
    pub pages: i64,
}

impl Pager {
    /// "Showing 51–100 of 10,000" in the request's language.
    pub fn showing(&self) -> String {
        if self.total == 0 {
            return crate::i18n::t("admin.list.none").into_owned();
        }
        crate::i18n::tf("admin.list.showing", &[("first", &grouped(self.first)), ("last", &grouped(self.last)), ("total", &grouped(self.total))])
    }

    pub fn page(&self) -> i64 {
        self.query.page
    }

    fn at(&self, page: i64) -> String {
        self.query.href(self.query.sort, self.query.dir, page)
    }

    pub fn first_href(&self) -> Option<String> {
        (self.query.page > 1).then(|| self.at(1))
    }

    pub fn prev_href(&self) -> Option<String> {
        (self.query.page > 1).then(|| self.at(self.query.page - 1))
    }

    pub fn next_href(&self) -> Option<String> {
        (self.query.page < self.pages).then(|| self.at(self.query.page + 1))
    }

    pub fn last_href(&self) -> Option<String> {
        (self.query.page < self.pages).then(|| self.at(self.pages))
    }

    /// The link of a column header: sorts by `key`, or flips the direction if it already does;
    /// back to page 1, filters kept.
    pub fn sort_href(&self, key: &str) -> String {
        let dir = if key == self.query.sort { self.query.dir.flip() } else { Dir::Asc };
        self.query.href(key, dir, 1)
    }

    /// `aria-sort` of a column header.
    pub fn aria_sort(&self, key: &str) -> &'static str {
        match (key == self.query.sort, self.query.dir) {
            (false, _) => "none",
            (true, Dir::Asc) => "ascending",
            (true, Dir::Desc) => "descending",
        }
    }

    /// Hidden fields that keep the sort when the filter form is submitted.
    pub fn sort_fields(&self) -> Vec<(&'static str, &'static str)> {
        if (self.query.sort, self.query.dir) == self.query.default { vec![] } else { vec![("sort", self.query.sort), ("dir", self.query.dir.as_str())] }
    }

    /// This page's own URL (what a form posting from it returns to).
    pub fn here(&self) -> String {
        self.at(self.query.page)
    }

    /// The list's URL with its search and filters, with `extra` pairs added (an export link).
    pub fn with(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if !self.query.q.is_empty() {
            s.append_pair("q", &self.query.q);
        }
        for (k, v) in &self.query.filters {
            s.append_pair(k, v);
        }
        if (self.query.sort, self.query.dir) != self.query.default {
            s.append_pair("sort", self.query.sort).append_pair("dir", self.query.dir.as_str());
        }
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        let query = s.finish();
        if query.is_empty() { path.to_string() } else { format!("{path}?{query}") }
    }
}

/// 10000 → "10,000".
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: Columns = Columns { sorts: &[("name", "name COLLATE NOCASE"), ("at", "at")], default: ("at", Dir::Desc), tiebreak: "id" };

    fn query(s: &str) -> ListQuery {
        let mut q = ListQuery::parse("/admin/things", &Params::parse(s.as_bytes()).unwrap(), &COLUMNS);
        q.keep("user", "alice & bob");
        q
    }

    #[test]
    fn only_allow_listed_columns_reach_order_by() {
        assert_eq!(query("sort=name;drop%20table%20users&dir=asc").window().sql(), " ORDER BY at ASC, id ASC LIMIT 50 OFFSET 0");
        assert_eq!(query("sort=name&dir=sideways").window().sql(), " ORDER BY name COLLATE NOCASE ASC, id ASC LIMIT 50 OFFSET 0");
        assert_eq!(query("page=3").window().sql(), " ORDER BY at DESC, id DESC LIMIT 50 OFFSET 100");
        assert_eq!(query("page=-1").page(), 1);
        assert_eq!(query("page=x").page(), 1);
    }

    #[test]
    fn pager_links_keep_search_filters_and_sort() {
        let mut q = query("q=al&sort=name&page=2");
        q.clamp(120);
        let p = q.pager(120);
        assert_eq!((p.first, p.last, p.pages), (51, 100, 3));
        assert_eq!(p.next_href().unwrap(), "/admin/things?q=al&user=alice+%26+bob&sort=name&dir=asc&page=3");
        assert_eq!(p.first_href().unwrap(), "/admin/things?q=al&user=alice+%26+bob&sort=name&dir=asc");
        assert_eq!(p.sort_href("name"), "/admin/things?q=al&user=alice+%26+bob&sort=name&dir=desc");
        assert_eq!(p.aria_sort("name"), "ascending");
        assert_eq!(p.aria_sort("at"), "none");
        let mut past = query("page=99");
        past.clamp(120);
        assert_eq!(past.page(), 3);
        assert_eq!(past.pager(120).last, 120);
        assert_eq!(past.pager(120).next_href(), None);
    }

    #[test]
    fn search_wildcards_are_literal_and_numbers_are_grouped() {
        assert_eq!(like("50%_a\\"), "%50\\%\\_a\\\\%");
        assert_eq!(grouped(10_000), "10,000");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
