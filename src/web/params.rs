//! Request parameters as RFC 6749 §3.1 wants them: none repeated, empty ones treated as absent.

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("parameter {0:?} is included more than once")]
pub struct Repeated(pub String);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    pub fn parse(input: &[u8]) -> Result<Self, Repeated> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(input) {
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(Repeated(k.to_string()));
            }
        }
        Ok(Self(map))
    }

    /// A browser form's body: a repeated field is a readable 400 page.
    pub fn form(body: &[u8]) -> Result<Self, crate::web::ErrorPage> {
        Self::parse(body).map_err(|e| crate::web::ErrorPage::bad_request("Invalid form", e.to_string()))
    }

    /// The value of `name`; a parameter sent without a value counts as omitted.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The lengths of every value, to bound what is stored.
    pub fn value_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.values().map(String::len)
    }

    pub fn into_map(self) -> HashMap<String, String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_are_absent() {
        assert_eq!(Params::parse(b"a=1&a=2").unwrap_err(), Repeated("a".into()));
        let p = Params::parse(b"a=&b=x%20y").unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y"));
    }
}
