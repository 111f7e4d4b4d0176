//! The deployment's secret for the postal address key: an HMAC-SHA256 key,
//! so the hash of an address in the journals and the contact history
//! cannot be recomputed from an address list by whoever reads them (an
//! unkeyed SHA-256 could: try every address of a town).
//!
//! The key is a file holding at least 64 hexadecimal digits (32 random
//! bytes), made with `letterpress key new FILE`, kept by the deployment
//! like any other secret (a secret store, a mounted Kubernetes secret),
//! named by `--address-key FILE` or `LETTERPRESS_ADDRESS_KEY_FILE`, and
//! kept as long as the contact history it keys: with another key, no
//! address matches its earlier events. The manifest and the history record
//! only the key's id ([`AddressKey::id`]), never the key; the history
//! refuses a key other than the one it was first used with.

use std::path::Path;

use crate::error::{Error, Result};

/// An address key, loaded from its file.
#[derive(Clone)]
pub struct AddressKey {
    key: ring::hmac::Key,
    id: String,
}

impl std::fmt::Debug for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AddressKey({})", self.id)
    }
}

/// Hex digits a key file holds at least (32 bytes).
const MIN_DIGITS: usize = 64;

impl AddressKey {
    /// The key in the file at `path` (see the module docs).
    pub fn load(path: &Path) -> Result<AddressKey> {
        let bad = |why: String| {
            Error::Usage(format!(
                "address key {}: {why} (`letterpress key new FILE` makes one)",
                path.display()
            ))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let digits = text.trim();
        if digits.len() < MIN_DIGITS || !digits.len().is_multiple_of(2) {
            return Err(bad(format!(
                "it holds {} characters; a key is at least {MIN_DIGITS} hexadecimal digits",
                digits.len()
            )));
        }
        let bytes = (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|_| bad("it holds something other than hexadecimal digits".into()))?;
        Ok(AddressKey::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> AddressKey {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes);
        let tag = ring::hmac::sign(&key, b"letterpress address key id");
        let id = format!("k-{}", &crate::util::digest::hex(tag.as_ref())[..16]);
        AddressKey { key, id }
    }

    /// A new key's file content: 32 random bytes in hexadecimal.
    pub fn generate() -> String {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system's random numbers");
        crate::util::digest::hex(&bytes) + "\n"
    }

    /// The key's id: a tag of it, which tells keys apart and reveals nothing.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The keyed hash of `text`, hexadecimal.
    pub fn hash(&self, text: &str) -> String {
        crate::util::digest::hex(ring::hmac::sign(&self.key, text.as_bytes()).as_ref())
    }
}

/// Writes a new key to `path` (which must not exist), readable by its
/// owner only.
pub fn write_new(path: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(AddressKey::generate().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_apart_and_a_short_or_odd_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("lp-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.key"), dir.join("b.key"));
        write_new(&a).unwrap();
        write_new(&b).unwrap();
        assert!(write_new(&a).is_err(), "never overwritten");
        let (ka, kb) = (AddressKey::load(&a).unwrap(), AddressKey::load(&b).unwrap());
        assert_ne!(ka.hash("x"), kb.hash("x"));
        assert_eq!(ka.hash("x"), AddressKey::load(&a).unwrap().hash("x"));
        assert_ne!(ka.id(), kb.id());
        assert_ne!(ka.hash("x"), crate::util::digest::sha256_hex(b"x"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for bad in ["abc", &"zz".repeat(40), &"a".repeat(65)] {
            std::fs::write(dir.join("bad.key"), bad).unwrap();
            assert!(AddressKey::load(&dir.join("bad.key")).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
