//! Store paths: `/nix/store/<hash>-<name>`, the hash 32 characters of Nix's base32 (20 bytes).
//! A binary cache names a path's narinfo by that hash part (`<hash>.narinfo`).

use super::nar::parse_nix_base32;

/// The 32-character hash part of a store path (`/nix/store/<hash>-name`), its base name, or a
/// bare hash; `None` if `s` is none of these.
pub fn hash_part(s: &str) -> Option<&str> {
    let base = s.trim().rsplit('/').next().unwrap_or_default();
    let hash = base.get(..32)?;
    let rest = &base[32..];
    (parse_nix_base32(hash, 20).is_some() && (rest.is_empty() || rest.starts_with('-')))
        .then_some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parts() {
        assert_eq!(
            hash_part("0a1b2c3d4e5g6h7i8j9kalbmcndpfqgr"),
            None,
            "e, o, u, t are not Nix base32"
        );
        let h = "0a1b2c3d4f5g6h7i8j9kalbmcndpfqgs";
        assert_eq!(hash_part(h), Some(h));
        assert_eq!(hash_part(&format!("/nix/store/{h}-hello-2.12")), Some(h));
        assert_eq!(hash_part(&format!("{h}-hello")), Some(h));
        assert_eq!(hash_part(&format!("{h}x")), None);
        assert_eq!(hash_part("/nix/store/short-hello"), None);
        assert_eq!(hash_part(""), None);
    }
}
