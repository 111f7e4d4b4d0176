//! Royal Mail Mailmark: the 4-state barcode C and L, and the content of the
//! Mailmark 2D (Data Matrix) code.
//!
//! Part of print production. [`encode`] turns the barcode's 22 (C) or 26
//! (L) characters into 66 or 78 bars, each `F` (full), `A` (ascender), `D`
//! (descender) or `T` (tracker), following Royal Mail's "Mailmark 4-state
//! barcode C/L encoding and decoding instructions" (September 2015):
//!
//! - the content: format (`0`-`4`), version id (`1`-`4`), class (`0`-`9`,
//!   `A`-`E`), supply chain id (2 digits for C, 6 for L), item id (8
//!   digits), destination postcode plus delivery point suffix (9 characters,
//!   space-padded; `XY11` for an international item);
//! - the postcode by its PAF pattern (one of six) as a number with the
//!   pattern's offset, then one consolidated data value (CDV) of every field
//!   (it fits 128 bits);
//! - the CDV as data numbers (the first 9 or 11 base 30, the rest base 32),
//!   Reed-Solomon check numbers over GF(32) (`x^5 + x^2 + 1`, generator roots
//!   α¹..α⁶ for C, α¹..α⁷ for L), each number as a 6-bit symbol (data
//!   numbers of the first group from the even-parity table, the rest from
//!   the odd one), the symbols scattered into extender groups, and each
//!   group's 6 bits as 3 bars.
//!
//! No maintained crate encodes Mailmark; the tests check every bar against
//! Debian's zint encoder on random inputs of both kinds and every postcode
//! pattern.

/// Characters of an `A` position of a postcode pattern.
const SET_A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Characters of an `L` position (the letters a postcode's inward part may
/// end with).
const SET_L: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// The PAF postcode + DPS patterns (`A` letter, `N` digit, `L` limited
/// letter, `S` space), in the specification's order.
const PATTERNS: [&[u8; 9]; 6] = [
    b"ANANLLNLS",
    b"AANNLLNLS",
    b"AANNNLLNL",
    b"AANANLLNL",
    b"ANNLLNLSS",
    b"ANNNLLNLS",
];

/// Added to a postcode's value by its pattern (cumulative), so that the
/// six patterns' ranges do not overlap.
const OFFSETS: [u64; 6] = [
    1,
    1 + 5_408_000_000,
    1 + 2 * 5_408_000_000,
    1 + 2 * 5_408_000_000 + 54_080_000_000,
    1 + 2 * 5_408_000_000 + 54_080_000_000 + 140_608_000_000,
    1 + 2 * 5_408_000_000 + 54_080_000_000 + 140_608_000_000 + 208_000_000,
];

/// Data and check numbers as symbols: 6 bits with an even number of ones
/// (the first group of data numbers) or an odd number (the rest).
const EVEN: [u8; 30] = [
    0x03, 0x05, 0x06, 0x09, 0x0A, 0x0C, 0x0F, 0x11, 0x12, 0x14, 0x17, 0x18, 0x1B, 0x1D, 0x1E, 0x21,
    0x22, 0x24, 0x27, 0x28, 0x2B, 0x2D, 0x2E, 0x30, 0x33, 0x35, 0x36, 0x39, 0x3A, 0x3C,
];
const ODD: [u8; 32] = [
    0x01, 0x02, 0x04, 0x07, 0x08, 0x0B, 0x0D, 0x0E, 0x10, 0x13, 0x15, 0x16, 0x19, 0x1A, 0x1C, 0x1F,
    0x20, 0x23, 0x25, 0x26, 0x29, 0x2A, 0x2C, 0x2F, 0x31, 0x32, 0x34, 0x37, 0x38, 0x3B, 0x3D, 0x3E,
];

/// Where each symbol goes among the extender groups.
const GROUPS_C: [usize; 22] = [
    3, 5, 7, 11, 13, 14, 16, 17, 19, 0, 1, 2, 4, 6, 8, 9, 10, 12, 15, 18, 20, 21,
];
const GROUPS_L: [usize; 26] = [
    2, 5, 7, 8, 13, 14, 15, 16, 21, 22, 23, 0, 1, 3, 4, 6, 9, 10, 11, 12, 17, 18, 19, 20, 24, 25,
];

/// A character's value in its set.
fn position(set: &[u8], c: u8) -> Option<u64> {
    set.iter().position(|&s| s == c).map(|p| p as u64)
}

/// A postcode plus DPS (9 characters, upper case, space-padded) as the
/// barcode's destination value; `XY11` (international) is 0.
pub fn destination(pc: &[u8; 9]) -> Result<u64, String> {
    if pc == b"XY11     " {
        return Ok(0);
    }
    let shown = String::from_utf8_lossy(pc);
    let kind = if pc[7] == b' ' {
        4
    } else if pc[8] == b' ' {
        match (pc[1].is_ascii_digit(), pc[2].is_ascii_digit()) {
            (true, true) => 5,
            (true, false) => 0,
            (false, _) => 1,
        }
    } else if pc[3].is_ascii_digit() {
        2
    } else {
        3
    };
    let mut value: u64 = 0;
    for (&c, &p) in pc.iter().zip(PATTERNS[kind].iter()) {
        let (set, base): (&[u8], u64) = match p {
            b'A' => (SET_A, 26),
            b'L' => (SET_L, 20),
            b'N' => (b"0123456789", 10),
            _ if c == b' ' => continue,
            _ => (b"", 1),
        };
        let v = position(set, c).ok_or_else(|| {
            format!("postcode and DPS {shown:?} is not in a Royal Mail PAF format")
        })?;
        value = value * base + v;
    }
    Ok(value + OFFSETS[kind])
}

/// GF(32) with `x^5 + x^2 + 1`: antilog and log tables.
fn gf32() -> ([u8; 62], [u8; 32]) {
    let (mut alog, mut log) = ([0u8; 62], [0u8; 32]);
    let mut v: u8 = 1;
    for i in 0..31 {
        alog[i] = v;
        alog[i + 31] = v;
        log[v as usize] = i as u8;
        v <<= 1;
        if v & 0x20 != 0 {
            v ^= 0x25;
        }
    }
    (alog, log)
}

/// Reed-Solomon check numbers (`n` of them, the highest power first) of
/// `data` over GF(32), generator roots α¹..αⁿ.
fn check_numbers(data: &[u8], n: usize) -> Vec<u8> {
    let (alog, log) = gf32();
    let mul = |a: u8, b: u8| match (a, b) {
        (0, _) | (_, 0) => 0,
        _ => alog[log[a as usize] as usize + log[b as usize] as usize],
    };
    // g(x) = (x - α¹)..(x - αⁿ), coefficients from x^n down.
    let mut g = vec![1u8];
    for &root in &alog[1..=n] {
        let mut next = vec![0u8; g.len() + 1];
        for (k, &c) in g.iter().enumerate() {
            next[k] ^= c;
            next[k + 1] ^= mul(c, root);
        }
        g = next;
    }
    // The remainder of data(x)·x^n divided by g(x).
    let mut rem = vec![0u8; n];
    for &d in data {
        let factor = d ^ rem[0];
        rem.rotate_left(1);
        rem[n - 1] = 0;
        for k in 0..n {
            rem[k] ^= mul(g[k + 1], factor);
        }
    }
    rem
}

/// The bars of a Mailmark 4-state barcode C (22 characters) or L (26).
pub fn encode(content: &str) -> Result<String, String> {
    let c = content.as_bytes();
    let long = match c.len() {
        22 => false,
        26 => true,
        n => {
            return Err(format!(
                "Mailmark content has {n} characters, not 22 (C) or 26 (L)"
            ))
        }
    };
    let digit = |b: u8| (b as char).to_digit(10).map(u128::from);
    let format = digit(c[0])
        .filter(|f| *f <= 4)
        .ok_or("Mailmark format must be 0 to 4")?;
    let version = digit(c[1])
        .filter(|v| (1..=4).contains(v))
        .ok_or("Mailmark version id must be 1 to 4")?
        - 1;
    let class = (c[2] as char)
        .to_digit(15)
        .map(u128::from)
        .filter(|_| !c[2].is_ascii_lowercase())
        .ok_or("Mailmark class must be 0 to 9 or A to E")?;
    let scid_len = if long { 6 } else { 2 };
    let number = |s: &[u8], what: &str| -> Result<u128, String> {
        let text = std::str::from_utf8(s).unwrap_or("");
        match text.bytes().all(|b| b.is_ascii_digit()) {
            true => Ok(text.parse().unwrap_or(0)),
            false => Err(format!("Mailmark {what} must be digits, not {text:?}")),
        }
    };
    let scid = number(&c[3..3 + scid_len], "supply chain id")?;
    let item = number(&c[3 + scid_len..11 + scid_len], "item id")?;
    let pc: [u8; 9] = c[c.len() - 9..].try_into().expect("9 characters");
    let dest = u128::from(destination(&pc)?);
    let mut cdv = (dest * 100_000_000 + item) * if long { 1_000_000 } else { 100 } + scid;
    cdv = ((cdv * 15 + class) * 5 + format) * 4 + version;
    // Data numbers: the first group base 30, the rest base 32.
    let (top, step, checks) = if long { (18, 10, 7) } else { (15, 8, 6) };
    let mut data = vec![0u8; top + 1];
    for j in (step + 1..=top).rev() {
        data[j] = (cdv % 32) as u8;
        cdv /= 32;
    }
    for j in (0..=step).rev() {
        data[j] = (cdv % 30) as u8;
        cdv /= 30;
    }
    let check = check_numbers(&data, checks);
    let symbols: Vec<u8> = data
        .iter()
        .chain(&check)
        .enumerate()
        .map(|(i, &n)| {
            if i <= step {
                EVEN[n as usize]
            } else {
                ODD[n as usize]
            }
        })
        .collect();
    let groups: &[usize] = if long { &GROUPS_L } else { &GROUPS_C };
    let mut extender = vec![0u8; symbols.len()];
    for (i, &s) in symbols.iter().enumerate() {
        extender[groups[i]] = s;
    }
    let mut bars = String::with_capacity(3 * extender.len());
    for (i, &e) in extender.iter().enumerate() {
        for k in 0..3 {
            let (high, low) = (e << k & 0x20 != 0, e << k & 0x04 != 0);
            bars.push(match (high, low, i % 2 == 1) {
                (true, true, _) => 'F',
                (true, false, false) | (false, true, true) => 'A',
                (true, false, true) | (false, true, false) => 'D',
                (false, false, _) => 'T',
            });
        }
    }
    Ok(bars)
}

/// The destination of an item to another country.
pub const INTERNATIONAL: &str = "XY11";

/// A postcode and delivery point suffix as the barcode carries them: upper
/// case, the outward and inward parts without the space, then the DPS
/// (`9Z` when there is none), padded with spaces to 9 characters.
pub fn postcode_dps(postcode: &str, dps: &str) -> Result<String, String> {
    if postcode == INTERNATIONAL {
        return Ok(format!("{INTERNATIONAL:<9}"));
    }
    let pc: String = postcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    let dps = match dps.trim() {
        "" => "9Z".to_owned(),
        d => d.to_uppercase(),
    };
    let joined = format!("{pc}{dps}");
    if !(5..=9).contains(&joined.len()) || !joined.is_ascii() {
        return Err(format!(
            "postcode {postcode:?} with DPS {dps:?} is not a UK postcode and delivery point suffix"
        ));
    }
    let padded = format!("{joined:<9}");
    destination(padded.as_bytes().try_into().expect("9 characters"))?;
    Ok(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_postcode_pattern_is_recognised_and_a_wrong_letter_refused() {
        for pc in [
            "W1A0AX1A ",
            "EC1A1BB1A",
            "SW1W0NY9Z",
            "B338TH1A ",
            "M11AE1A  ",
            "CR26XH1A ",
        ] {
            destination(pc.as_bytes().try_into().unwrap()).unwrap();
        }
        // C is not a letter a postcode's inward part ends with.
        assert!(destination(b"B338TC1A ").is_err());
        assert_eq!(postcode_dps("ec1a 1bb", "").unwrap(), "EC1A1BB9Z");
        assert!(postcode_dps("12345", "").is_err());
    }

    #[test]
    fn the_content_is_checked_field_by_field() {
        assert!(encode("51000000000000EC1A1BB9Z").is_err(), "length");
        assert!(encode("5100000000000EC1A1BB9Z")
            .unwrap_err()
            .contains("format"));
        assert!(encode("1F00000000000EC1A1BB9Z")
            .unwrap_err()
            .contains("version"));
        assert!(encode("11F0000000000EC1A1BB9Z")
            .unwrap_err()
            .contains("class"));
        assert!(encode("11100X00000000EC1A1BB9Z").is_err());
        assert_eq!(encode("1110000000000EC1A1BB9Z").unwrap().len(), 66);
    }
}
