//! Any bytes, read as CSV, JSON and JSONL: the readers must not panic, and
//! every record they yield is a record or a reason.
#![no_main]

use letterpress::input::read_bytes;
use letterpress::model::vocab::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Csv, Format::Json, Format::Jsonl] {
        if let Ok(items) = read_bytes(format, data) {
            for item in items {
                if let Err(e) = item {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
});
