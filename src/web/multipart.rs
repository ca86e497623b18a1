//! The one `multipart/form-data` field latchkey accepts (an app's logo, RFC 7578): the named
//! part's bytes and declared type, found within a body already read under a size limit.

/// One file part.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

/// The boundary of a `multipart/form-data; boundary=…` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The part named `name` in `body`, if present and well-formed.
pub fn field<'a>(body: &'a [u8], boundary: &str, name: &str) -> Option<Part<'a>> {
    if boundary.is_empty() || boundary.len() > 70 {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let mut rest = &body[find(body, delimiter.as_bytes())? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return None;
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let content = &rest[head_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        let mut disposition_name = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':')?;
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                disposition_name = v.split(';').find_map(|p| p.trim().strip_prefix("name=").map(|n| n.trim_matches('"').to_string()));
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_ascii_lowercase());
            }
        }
        if disposition_name.as_deref() == Some(name) {
            return Some(Part { content_type, data: &content[..end] });
        }
        rest = &content[end + 2 + delimiter.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_named_part_and_nothing_in_malformed_bodies() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XyZ--\r\n";
        assert_eq!(boundary("multipart/form-data; boundary=XyZ").as_deref(), Some("XyZ"));
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        let part = field(body, "XyZ", "logo").unwrap();
        assert_eq!(part.content_type.as_deref(), Some("image/png"));
        assert_eq!(part.data, b"\x89PNG\r\n\x1a\n");
        assert_eq!(field(body, "XyZ", "csrf").unwrap().data, b"abc");
        assert_eq!(field(body, "XyZ", "missing"), None);
        assert_eq!(field(b"--XyZ\r\nno end", "XyZ", "logo"), None);
        assert_eq!(field(b"garbage", "XyZ", "logo"), None);
    }
}
