//! SHA-256 digests in lower-case hex: of files for the manifest, of a
//! layout version's folder, of record ids for shards.

/// SHA-256 of `bytes` in lower-case hex.
///
/// Every output file is hashed for the manifest, so this runs for every
/// document. It uses ring (already in the build for TLS), whose assembly
/// implementation is about twice as fast as the portable one of `sha2` on
/// CPUs without SHA extensions; `sha2` stays for streaming hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from the system's random source, as hex: session ids, CSRF
/// tokens, bearer tokens.
pub fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    hex(&bytes)
}

/// A 128-bit hash as two words, for tables of many: a `u128` is aligned to
/// 16 bytes, so an entry of one and a `u64` takes 32 bytes, of these 24.
pub fn words(hash: u128) -> [u64; 2] {
    [hash as u64, (hash >> 64) as u64]
}
