//! The Intelligent Mail barcode encoder agrees with Debian's zint on 1,000
//! random valid inputs of every routing length.

/// zint's bars for the same input.
fn zint(tracking: &str, routing: &str) -> String {
    let data = if routing.is_empty() {
        tracking.to_owned()
    } else {
        format!("{tracking}-{routing}")
    };
    crate::common::zint_bars("USPS_IMAIL", &data, 65)
}

#[test]
fn the_encoder_agrees_with_zint_on_a_thousand_random_inputs() {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let digits = |k: usize, next: &mut dyn FnMut(u64) -> u64| -> String {
        (0..k).map(|_| char::from(b'0' + next(10) as u8)).collect()
    };
    for i in 0..1000 {
        let barcode_id = format!("{}{}", next(10), next(5));
        let service = digits(3, &mut next);
        let (mailer, serial) = if i % 2 == 0 {
            (
                format!("{}{}", 1 + next(8), digits(5, &mut next)),
                digits(9, &mut next),
            )
        } else {
            (format!("9{}", digits(8, &mut next)), digits(6, &mut next))
        };
        let tracking = format!("{barcode_id}{service}{mailer}{serial}");
        let routing = digits([0, 5, 9, 11][i % 4], &mut next);
        let ours = letterpress::output::print::imb::encode(&tracking, &routing).unwrap();
        assert_eq!(ours, zint(&tracking, &routing), "{tracking}-{routing}");
    }
}
