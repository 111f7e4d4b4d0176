//! Password protection of a letter sent as an email attachment: the PDF 2.0
//! standard security handler, revision 6 (AES-256, ISO 32000-2, 7.6.4.4),
//! never RC4.
//!
//! The same letter, password and seed give the same bytes, as everything a
//! run writes must: where the security handler asks for random values (the
//! file encryption key, the four 8-byte salts of `/U` and `/O`, the spare
//! bytes of `/Perms` and each string's and stream's AES initialisation
//! vector), they are derived instead. The file key is PBKDF2-HMAC-SHA256 of
//! the password over the seed (the layout version, as-of date and record),
//! 10,000 rounds: slower than the check of a guessed password against `/U`
//! (Algorithm 2.B), so the derivation gives an attacker no shortcut; the
//! rest is HMAC-SHA256 under the file key, unpredictable without it, and
//! each vector is unique in the file (object, generation, position). lopdf,
//! which reads and writes the PDF here, has an R6 encryptor too, but it
//! draws salts and vectors from the thread's random generator with no way
//! to supply them, so its output differs on every run.
//!
//! The customer may print and copy (a screen reader needs to extract the
//! text): every permission is granted; the owner password is derived and
//! known to nobody. The password is never stored or logged by the engine.

use std::num::NonZeroU32;

use aes::cipher::{BlockCipherEncrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use lopdf::{Dictionary, Document, Object, ObjectId, StringFormat};
use ring::{digest, hmac, pbkdf2};

/// PBKDF2 rounds of the file key (about 3 ms; checking a guess against
/// `/U` costs less).
const KEY_ROUNDS: u32 = 10_000;

/// All permissions granted (bits 3-6 and 9-12, reserved bits set).
const PERMISSIONS: i32 = -4;

/// Encrypts `pdf` so that it opens only with `password`. `seed` makes the
/// derived values unique per document; the same inputs give the same bytes.
pub fn encrypt(pdf: &[u8], password: &str, seed: &[u8]) -> Result<Vec<u8>, String> {
    let password = password.as_bytes();
    let password = &password[..password.len().min(127)];
    if password.is_empty() {
        return Err("the attachment's password is empty".into());
    }
    let mut doc =
        Document::load_mem(pdf).map_err(|e| format!("cannot read the letter to encrypt: {e}"))?;
    let mut file_key = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(KEY_ROUNDS).expect("not zero"),
        seed,
        password,
        &mut file_key,
    );
    let derive = hmac::Key::new(hmac::HMAC_SHA256, &file_key);
    let derived = |label: &str| hmac::sign(&derive, label.as_bytes());

    for (&id, object) in doc.objects.iter_mut() {
        if is_xref_or_object_stream(object) {
            continue;
        }
        let mut n = 0;
        encrypt_object(object, id, &file_key, &derive, &mut n);
    }
    let owner = hex(&derived("owner password").as_ref()[..16]);
    let dict = encrypt_dictionary(password, owner.as_bytes(), &file_key, &derived);
    let encrypt_id = doc.add_object(dict);
    doc.trailer.set("Encrypt", Object::Reference(encrypt_id));
    if doc.trailer.get(b"ID").is_err() {
        let id = derived("document id").as_ref()[..16].to_vec();
        let id = Object::String(id, StringFormat::Hexadecimal);
        doc.trailer.set("ID", Object::Array(vec![id.clone(), id]));
    }
    let mut out = Vec::with_capacity(pdf.len() + 1024);
    doc.save_to(&mut out)
        .map_err(|e| format!("cannot write the encrypted letter: {e}"))?;
    Ok(out)
}

/// Streams the encryption leaves alone: the cross-reference stream and
/// object streams (lopdf writes their objects out one by one).
fn is_xref_or_object_stream(object: &Object) -> bool {
    match object {
        Object::Stream(s) => matches!(
            s.dict.get(b"Type").and_then(Object::as_name),
            Ok(b"XRef") | Ok(b"ObjStm")
        ),
        _ => false,
    }
}

/// Encrypts every string and stream of an object in place; `n` counts the
/// strings and streams of the object, so each gets its own vector.
fn encrypt_object(
    object: &mut Object,
    id: ObjectId,
    key: &[u8; 32],
    derive: &hmac::Key,
    n: &mut u32,
) {
    let iv = |n: &mut u32| {
        *n += 1;
        let tag = hmac::sign(derive, format!("iv {} {} {n}", id.0, id.1).as_bytes());
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&tag.as_ref()[..16]);
        iv
    };
    match object {
        Object::String(bytes, _) => {
            *bytes = aes256_cbc(key, iv(n), bytes);
        }
        Object::Array(items) => {
            for item in items {
                encrypt_object(item, id, key, derive, n);
            }
        }
        Object::Dictionary(dict) => encrypt_dict(dict, id, key, derive, n),
        Object::Stream(stream) => {
            encrypt_dict(&mut stream.dict, id, key, derive, n);
            let content = aes256_cbc(key, iv(n), &stream.content);
            stream.set_content(content);
        }
        _ => {}
    }
}

fn encrypt_dict(
    dict: &mut Dictionary,
    id: ObjectId,
    key: &[u8; 32],
    derive: &hmac::Key,
    n: &mut u32,
) {
    for (_, value) in dict.iter_mut() {
        encrypt_object(value, id, key, derive, n);
    }
}

/// `iv` followed by `data` encrypted with AES-256-CBC, PKCS #7 padded, as
/// PDF strings and streams carry it.
fn aes256_cbc(key: &[u8; 32], iv: [u8; 16], data: &[u8]) -> Vec<u8> {
    let pad = 16 - data.len() % 16;
    let mut out = Vec::with_capacity(16 + data.len() + pad);
    out.extend_from_slice(&iv);
    out.extend_from_slice(data);
    out.resize(16 + data.len() + pad, pad as u8);
    let mut cipher = cbc::Encryptor::<aes::Aes256>::new(key.into(), &iv.into());
    for block in out[16..].chunks_exact_mut(16) {
        cipher.encrypt_block(block.try_into().expect("16 bytes"));
    }
    out
}

/// The `/Encrypt` dictionary of revision 6 (Algorithms 8, 9 and 10).
fn encrypt_dictionary(
    user: &[u8],
    owner: &[u8],
    file_key: &[u8; 32],
    derived: &dyn Fn(&str) -> hmac::Tag,
) -> Dictionary {
    let salt = |label: &str| derived(label).as_ref()[..8].to_vec();
    let (u_validation, u_key) = (salt("user validation salt"), salt("user key salt"));
    let (o_validation, o_key) = (salt("owner validation salt"), salt("owner key salt"));

    let mut u = hash_2b(user, &u_validation, &[]).to_vec();
    u.extend_from_slice(&u_validation);
    u.extend_from_slice(&u_key);
    let ue = wrap(&hash_2b(user, &u_key, &[]), file_key);

    let mut o = hash_2b(owner, &o_validation, &u).to_vec();
    o.extend_from_slice(&o_validation);
    o.extend_from_slice(&o_key);
    let oe = wrap(&hash_2b(owner, &o_key, &u), file_key);

    let mut perms = [0u8; 16];
    perms[..4].copy_from_slice(&PERMISSIONS.to_le_bytes());
    perms[4..8].copy_from_slice(&[0xFF; 4]);
    perms[8..12].copy_from_slice(b"Tadb");
    perms[12..].copy_from_slice(&derived("perms").as_ref()[..4]);
    aes::Aes256::new(file_key.into()).encrypt_block((&mut perms).into());

    let hex = |b: Vec<u8>| Object::String(b, StringFormat::Hexadecimal);
    let mut filter = Dictionary::new();
    filter.set("AuthEvent", Object::Name(b"DocOpen".to_vec()));
    filter.set("CFM", Object::Name(b"AESV3".to_vec()));
    filter.set("Length", 32);
    let mut filters = Dictionary::new();
    filters.set("StdCF", filter);
    let mut dict = Dictionary::new();
    dict.set("Filter", Object::Name(b"Standard".to_vec()));
    dict.set("V", 5);
    dict.set("R", 6);
    dict.set("Length", 256);
    dict.set("CF", filters);
    dict.set("StmF", Object::Name(b"StdCF".to_vec()));
    dict.set("StrF", Object::Name(b"StdCF".to_vec()));
    dict.set("U", hex(u));
    dict.set("UE", hex(ue.to_vec()));
    dict.set("O", hex(o));
    dict.set("OE", hex(oe.to_vec()));
    dict.set("P", PERMISSIONS);
    dict.set("Perms", hex(perms.to_vec()));
    dict.set("EncryptMetadata", true);
    dict
}

/// The file key encrypted under an intermediate key: AES-256-CBC, zero
/// vector, no padding (the `/UE` and `/OE` entries).
fn wrap(intermediate: &[u8; 32], file_key: &[u8; 32]) -> [u8; 32] {
    let mut out = *file_key;
    let mut cipher = cbc::Encryptor::<aes::Aes256>::new(intermediate.into(), &[0u8; 16].into());
    for block in out.chunks_exact_mut(16) {
        cipher.encrypt_block(block.try_into().expect("16 bytes"));
    }
    out
}

/// Algorithm 2.B of ISO 32000-2: the hash of a password with a salt and,
/// for the owner password, the `/U` string.
fn hash_2b(password: &[u8], salt: &[u8], udata: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(password.len() + salt.len() + udata.len());
    input.extend_from_slice(password);
    input.extend_from_slice(salt);
    input.extend_from_slice(udata);
    let mut k = digest::digest(&digest::SHA256, &input).as_ref().to_vec();
    let mut round = 0usize;
    let mut last = 0u8;
    while round < 64 || usize::from(last) + 32 > round {
        let mut k1 = Vec::with_capacity(64 * (password.len() + k.len() + udata.len()));
        for _ in 0..64 {
            k1.extend_from_slice(password);
            k1.extend_from_slice(&k);
            k1.extend_from_slice(udata);
        }
        let key: [u8; 16] = k[..16].try_into().expect("16 bytes");
        let iv: [u8; 16] = k[16..32].try_into().expect("16 bytes");
        let mut cipher = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into());
        for block in k1.chunks_exact_mut(16) {
            cipher.encrypt_block(block.try_into().expect("16 bytes"));
        }
        let sum: u32 = k1[..16].iter().map(|&b| u32::from(b)).sum();
        let algorithm = match sum % 3 {
            0 => &digest::SHA256,
            1 => &digest::SHA384,
            _ => &digest::SHA512,
        };
        k = digest::digest(algorithm, &k1).as_ref().to_vec();
        last = *k1.last().expect("not empty");
        round += 1;
    }
    k[..32].try_into().expect("32 bytes")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-page PDF with text, made by lopdf.
    fn sample() -> Vec<u8> {
        let mut doc = Document::with_version("1.7");
        let content = lopdf::Stream::new(
            Dictionary::new(),
            b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET".to_vec(),
        );
        let content = doc.add_object(content);
        let mut page = Dictionary::new();
        page.set("Type", Object::Name(b"Page".to_vec()));
        page.set("Contents", Object::Reference(content));
        let page = doc.add_object(page);
        let mut pages = Dictionary::new();
        pages.set("Type", Object::Name(b"Pages".to_vec()));
        pages.set("Kids", vec![Object::Reference(page)]);
        pages.set("Count", 1);
        let pages = doc.add_object(pages);
        let mut catalog = Dictionary::new();
        catalog.set("Type", Object::Name(b"Catalog".to_vec()));
        catalog.set("Pages", Object::Reference(pages));
        catalog.set("Lang", Object::string_literal("en-GB"));
        let catalog = doc.add_object(catalog);
        doc.trailer.set("Root", Object::Reference(catalog));
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    #[test]
    fn lopdf_opens_it_with_the_password_only_and_the_bytes_repeat() {
        let plain = sample();
        let once = encrypt(&plain, "1980-04-12", b"seed").unwrap();
        assert_eq!(once, encrypt(&plain, "1980-04-12", b"seed").unwrap());
        assert_ne!(once, encrypt(&plain, "1980-04-12", b"other seed").unwrap());
        assert!(
            !once.windows(5).any(|w| w == b"Hello"),
            "the text is encrypted"
        );
        // lopdf's own R6 implementation checks our /U, /UE and /Perms.
        let open = |password: &str| {
            Document::load_mem_with_options(&once, lopdf::LoadOptions::with_password(password))
        };
        assert!(open("wrong").is_err());
        let doc = open("1980-04-12").unwrap();
        let catalog = doc.catalog().unwrap();
        assert_eq!(catalog.get(b"Lang").unwrap().as_str().unwrap(), b"en-GB");
        let page = doc.page_iter().next().unwrap();
        assert!(String::from_utf8_lossy(&doc.get_page_content(page)).contains("(Hello)"));
    }
}
