//! URLs as people may see them: the one place that decides what of a URL is a secret, used by
//! every message, note and file that shows or records one (HTTP errors, `status --watch`'s
//! series, binary caches, NAR inputs, connection strings).
//!
//! A URL is `scheme://[userinfo@]authority/path?query#fragment`, its scheme compared without
//! regard to case (RFC 3986 §3.1: `HTTP://` is `http://`). Secret are the userinfo of any scheme
//! (user names too, since tokens are often passed as one) and the values of query parameters
//! that carry credentials: pre-signed S3 URLs, API tokens, SAS signatures.

/// Query parameters whose values are credentials, compared without regard to case: the common
/// names of tokens and passwords, S3's pre-signed URL fields, and Azure's SAS signature (`sig`).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "auth_token",
    "authorization",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "key",
    "api_key",
    "apikey",
    "api-key",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
];

/// Pieces of parameter names that mark a credential however the rest is spelled
/// (`github_token`, `db_password`, `X-Amz-Credential`): hiding a harmless value costs nothing,
/// showing a secret one does.
const SECRET_PIECES: &[&str] = &["token", "secret", "passw", "signature", "credential"];

/// What stands in for a secret.
const HIDDEN: &str = "***";

/// The scheme of `s` (`http` of `HTTP://x`, as written), when `s` starts with a valid one
/// followed by `://`.
pub fn scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// `s` after `name://`, the scheme compared without regard to case.
pub fn strip_scheme<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let sch = scheme(s)?;
    sch.eq_ignore_ascii_case(name)
        .then(|| &s[sch.len() + "://".len()..])
}

/// Is `s` an `http://` or `https://` URL (in any case)?
pub fn is_http(s: &str) -> bool {
    strip_scheme(s, "http").is_some() || strip_scheme(s, "https").is_some()
}

/// The userinfo of `scheme://userinfo@host/…`, if the URL has one: everything before the last
/// `@` of the authority (a password may hold an unescaped `@`).
fn userinfo(url: &str) -> Option<&str> {
    let sch = scheme(url)?;
    let rest = &url[sch.len() + "://".len()..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map(|(info, _)| info)
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&name.as_str()) || SECRET_PIECES.iter().any(|p| name.contains(p))
}

/// The values of secret query parameters of `url`, as written (not decoded).
fn secret_values(url: &str) -> Vec<&str> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or(query);
    query
        .split(['&', ';'])
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, value)| is_secret_param(name) && !value.is_empty())
        .map(|(_, value)| value)
        .collect()
}

/// `url` as people may see it: `https://user:secret@host/x?token=abc&a=1` becomes
/// `https://***@host/x?token=***&a=1`. Text that is not a `scheme://` URL is returned as it is.
pub fn redact(url: &str) -> String {
    if scheme(url).is_none() {
        return url.to_string();
    }
    let mut out = match userinfo(url) {
        Some(info) => url.replacen(&format!("{info}@"), &format!("{HIDDEN}@"), 1),
        None => url.to_string(),
    };
    if let Some((base, query)) = out.split_once('?') {
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let mut hidden = String::with_capacity(out.len());
        hidden.push_str(base);
        hidden.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                hidden.push('&');
            }
            match pair.split_once('=') {
                Some((name, value)) if is_secret_param(name) && !value.is_empty() => {
                    hidden.push_str(name);
                    hidden.push('=');
                    hidden.push_str(HIDDEN);
                }
                _ => hidden.push_str(pair),
            }
        }
        if let Some(f) = fragment {
            hidden.push('#');
            hidden.push_str(f);
        }
        out = hidden;
    }
    out
}

/// `text` (an error message, say, that may quote the URL it failed on) with the secrets of
/// `url` replaced by `***`: the URL itself, its userinfo, password and secret parameter values
/// wherever they appear.
pub fn scrub(text: &str, url: &str) -> String {
    if scheme(url).is_none() {
        return text.to_string();
    }
    let mut t = text.replace(url, &redact(url));
    let mut secrets: Vec<&str> = secret_values(url);
    if let Some(info) = userinfo(url).filter(|i| !i.is_empty()) {
        secrets.push(info);
        // The password alone, should a message show it apart from the user name.
        if let Some((_, pass)) = info.split_once(':') {
            secrets.push(pass);
        }
    }
    // Longest first, so that a secret holding another is hidden whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets.into_iter().filter(|s| !s.is_empty()) {
        t = t.replace(s, HIDDEN);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_of_any_scheme_in_any_case_is_hidden() {
        assert_eq!(
            redact("https://alice:hunter2@cache.example/nar/x.nar.xz"),
            "https://***@cache.example/nar/x.nar.xz"
        );
        assert_eq!(
            redact("HTTP://u:pw@127.0.0.1:1/x"),
            "HTTP://***@127.0.0.1:1/x"
        );
        assert_eq!(
            redact("file://u:pw@localhost/tmp"),
            "file://***@localhost/tmp"
        );
        assert_eq!(redact("s3+http://tok@h/b"), "s3+http://***@h/b");
        assert_eq!(
            redact("PostgreSQL://u:p@w@db/hydra"),
            "PostgreSQL://***@db/hydra"
        );
        // An @ in the path is not a credential; a path is not a URL.
        assert_eq!(
            redact("https://cache.example/a@b"),
            "https://cache.example/a@b"
        );
        assert_eq!(redact("/tmp/u:pw@x"), "/tmp/u:pw@x");
    }

    #[test]
    fn secret_parameters_are_hidden_and_others_kept() {
        assert_eq!(
            redact("http://h/x?token=abc&a=1#frag"),
            "http://h/x?token=***&a=1#frag"
        );
        assert_eq!(
            redact(
                "https://b.s3.example/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=f00&\
                 X-Amz-Security-Token=t0k&X-Amz-Expires=60"
            ),
            "https://b.s3.example/k?X-Amz-Credential=***&X-Amz-Signature=***&\
             X-Amz-Security-Token=***&X-Amz-Expires=60"
        );
        assert_eq!(
            redact("https://h/?sig=s1&API_KEY=k&github_token=g&sv=2020"),
            "https://h/?sig=***&API_KEY=***&github_token=***&sv=2020"
        );
    }

    #[test]
    fn scrub_hides_every_piece_a_message_may_quote() {
        let url = "https://alice:hunter2@x/?token=t0psecret";
        assert_eq!(
            scrub(&format!("invalid uri {url} and hunter2, t0psecret"), url),
            "invalid uri https://***@x/?token=*** and ***, ***"
        );
        assert_eq!(scrub("nothing", "https://x"), "nothing");
        assert!(strip_scheme("HTTPS://x", "https") == Some("x"));
        assert!(is_http("Http://x") && !is_http("httpx://x") && !is_http("/http://"));
    }
}
