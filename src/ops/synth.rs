//! Synthetic customer records for benchmarks and scale tests.
//!
//! Used by `examples/gen-data.rs` and `benches/`. The records fit the sample
//! `welcome-letter` and `annual-statement` layouts, mix scripts like the
//! fixtures do, and are deterministic for a given seed.

use serde_json::{json, Value};

use crate::util::rng::Rng;

const FIRST: &[&str] = &[
    "James",
    "Zoë",
    "François",
    "Björn",
    "Łukasz",
    "Γιώργος",
    "Анна",
    "محمد",
    "小明",
    "太郎",
    "Priya",
    "Oluwaseun",
    "Siobhán",
    "José María",
    "İlkay",
    "Emma",
];
const LAST: &[&str] = &[
    "Whitfield",
    "Ångström",
    "Lefèvre",
    "Müller-Lüdenscheidt",
    "Παπαδόπουλος",
    "Кузнецова",
    "العلي",
    "王",
    "山田",
    "Raghunathan",
    "Adebayo-Okonkwo",
    "Ní Bhraonáin",
    "Fernández de Córdoba",
    "Gündoğan",
    "Taylor",
];
const STREETS: &[&str] = &[
    "Elm Grove",
    "High Street",
    "Station Road",
    "Königsallee",
    "rue de la Paix",
    "Canongate",
    "Church Lane",
    "Harbour View",
];
const CITIES: &[&str] = &[
    "London",
    "Edinburgh",
    "Manchester",
    "Bristol",
    "Leeds",
    "Cardiff",
    "Belfast",
    "Oxford",
];
const PRODUCTS: &[&str] = &[
    "Everyday Current Account",
    "Premier Current Account",
    "Easy Access Saver",
    "Student Account",
];
const PAYEES: &[&str] = &[
    "Tesco Stores",
    "Salary ACME Ltd",
    "Rent",
    "TfL Travel Charge",
    "British Gas",
];

fn person(i: usize, rng: &mut Rng) -> Value {
    json!({
        "customer_id": format!("S-{:08}", i + 1),
        "first_name": rng.pick(FIRST),
        "last_name": rng.pick(LAST),
        "address": {
            "line1": format!("{} {}", 1 + rng.below(200), rng.pick(STREETS)),
            "postcode": format!("AB{} {}CD", 1 + rng.below(99), rng.below(10)),
            "city": rng.pick(CITIES),
        },
    })
}

/// Record number `i` (from 0) for the `welcome-letter` layout.
pub fn welcome_record(i: usize, rng: &mut Rng) -> Value {
    let mut rec = person(i, rng);
    rec["product"] = json!(rng.pick(PRODUCTS));
    rec["account_number"] = json!(format!("{:08}", rng.below(100_000_000)));
    rec["opened_on"] = json!(format!(
        "2026-{:02}-{:02}",
        1 + rng.below(12),
        1 + rng.below(28)
    ));
    if rng.below(3) == 0 {
        rec["overdraft_limit"] = json!(500 * (1 + rng.below(10)));
    }
    rec["email"] = json!(format!("customer{}@example.com", i + 1));
    rec["locale"] = json!(rng.pick(LOCALES));
    rec
}

/// Record locales, roughly as a UK bank with customers abroad might have them.
const LOCALES: &[&str] = &[
    "en-GB", "en-GB", "en-GB", "en-GB", "en-GB", "de-DE", "fr-FR", "es-ES", "en-US",
];

/// Record number `i` (from 0) for the `annual-statement` layout, with 0 to
/// `max_transactions` transactions.
pub fn statement_record(i: usize, rng: &mut Rng, max_transactions: u64) -> Value {
    let mut rec = person(i, rng);
    let n = rng.below(max_transactions + 1) as usize;
    let txs: Vec<Value> = (0..n)
        .map(|k| {
            let cents = rng.below(50_000) as f64 / 100.0;
            let amount = if rng.below(5) == 0 {
                cents * 4.0
            } else {
                -cents
            };
            json!({
                "date": format!("2025-{:02}-{:02}", 1 + k * 12 / n, 1 + rng.below(28)),
                "description": rng.pick(PAYEES),
                "amount": amount,
            })
        })
        .collect();
    rec["account_name"] = json!("Everyday Current Account");
    rec["account_number"] = json!(format!("{:08}", rng.below(100_000_000)));
    rec["currency"] = json!("GBP");
    rec["period_start"] = json!("2025-01-01");
    rec["period_end"] = json!("2025-12-31");
    rec["opening_balance"] = json!(rng.below(1_000_000) as f64 / 100.0);
    rec["transactions"] = json!(txs);
    rec
}
