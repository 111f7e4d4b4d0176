//! The Mailmark 4-state encoder agrees bar for bar with Debian's zint on
//! random barcodes C and L over every postcode pattern.

use std::process::Command;

/// zint's bars for the same content.
fn zint(content: &str) -> String {
    crate::common::zint_bars("MAILMARK", content, content.len() * 3)
}

#[test]
fn the_four_state_encoder_agrees_with_zint_on_random_barcodes_c_and_l() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const L: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
    let patterns = [
        "ANANLLNLS",
        "AANNLLNLS",
        "AANNNLLNL",
        "AANANLLNL",
        "ANNLLNLSS",
        "ANNNLLNLS",
    ];
    for i in 0..700 {
        let postcode: String = match i % 7 {
            6 => "XY11     ".to_owned(),
            k => patterns[k]
                .bytes()
                .map(|p| match p {
                    b'A' => A[next(26) as usize] as char,
                    b'L' => L[next(20) as usize] as char,
                    b'N' => char::from(b'0' + next(10) as u8),
                    _ => ' ',
                })
                .collect(),
        };
        let digits = |k: usize, next: &mut dyn FnMut(u64) -> u64| -> String {
            (0..k).map(|_| char::from(b'0' + next(10) as u8)).collect()
        };
        let class = "0123456789ABCDE".as_bytes()[next(15) as usize] as char;
        let scid = digits(if i % 2 == 0 { 2 } else { 6 }, &mut next);
        let content = format!(
            "{}{}{class}{scid}{}{postcode}",
            next(5),
            1 + next(4),
            digits(8, &mut next)
        );
        let ours = letterpress::output::print::mailmark::encode(&content).unwrap();
        assert_eq!(ours, zint(&content), "{content:?}");
    }
}

/// A layout `mm@1` (A4, DIN 5008 form B window) whose letter puts the
/// address with its Mailmark where the window shows it.
fn mailmark_layout(dir: &std::path::Path, mailmark: &str) -> std::path::PathBuf {
    let layouts = dir.join("layouts");
    let v = layouts.join("mm/1");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(
        v.join("layout.yaml"),
        format!(
            "name: mm\nversion: 1\ntitle: Mailmark\nstatus: approved\nid_field: id\npage: {{format: a4}}\n\
             print:\n  window: din-5008-b\n  postcode_field: postcode\n  mailmark: {mailmark}\n\
             fields:\n  - {{name: id, type: string, required: true}}\n  - {{name: name, type: string, required: true}}\n\
             \x20 - {{name: street, type: string, required: true}}\n  - {{name: city, type: string, required: true}}\n\
             \x20 - {{name: postcode, type: string, required: true}}\n  - {{name: dps, type: string}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        v.join("letter.typ"),
        "#import \"/letterpress/print.typ\": address-window\n#let r = json(\"/record.json\")\n\
         #set page(paper: \"a4\", margin: (left: 25mm, top: 20mm, rest: 20mm))\n\
         #address-window([#r.name \\ #r.street \\ #r.city \\ #r.postcode], return-line: [Northwind Bank · 1 Harbour Square · London EC2A 4NE], window: \"din-5008-b\", mailmark: json(\"/letterpress/piece.json\").mailmark)\n\
         #v(110mm)\nDear #r.name,\n",
    )
    .unwrap();
    crate::common::approve(&layouts, "mm@1");
    layouts
}

/// The Data Matrix codes zxing-cpp (PyPI) finds on a page image, as text.
fn zxing(png: &std::path::Path) -> Vec<String> {
    let python = crate::common::root().join("target/zxing/bin/python");
    assert!(
        python.exists(),
        "this test decodes with zxing-cpp from PyPI: python3 -m venv target/zxing && target/zxing/bin/pip install zxing-cpp pillow (.ci/run does)"
    );
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, zxingcpp\nfrom PIL import Image\nfor r in zxingcpp.read_barcodes(Image.open(sys.argv[1])):\n    print(str(r.format) + '\\t' + r.bytes.decode('latin-1'))",
        ])
        .arg(png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::common::describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("Data Matrix\t"))
        .map(|l| l.split_once('\t').unwrap().1.to_owned())
        .collect()
}

#[test]
fn each_piece_carries_its_mailmark_in_the_window_in_the_ticket_and_the_mrdf() {
    use crate::common::*;
    let dir = scratch("mailmark-run");
    let layouts = mailmark_layout(
        &dir,
        "{barcode: C, class: \"2\", supply_chain_id: \"12\", item_id_offset: 4000, postcode_field: postcode, dps_field: dps, two_d: {service_type: \"1\", return_postcode: \"EC2A 4NE\"}}",
    );
    let rec = |id: &str, pc: &str, dps: &str| serde_json::json!({"id": id, "name": "Ann Lee", "street": "1 High Street", "city": "LONDON", "postcode": pc, "dps": dps});
    let data = dir.join("d.jsonl");
    write_jsonl(
        &data,
        &[
            rec("A", "EC1A 1BB", "1A"),
            rec("B", "M1 1AE", ""),
            rec("C", "B33 8TH", "2B"),
        ],
    );
    let out = dir.join("run");
    let res = run_layout_with(&layouts, "mm", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let rows = csv_rows(&out.join("print/job-ticket.csv"));
    let mrdf = csv_rows(&out.join("print/print-001.mrdf.csv"));
    let file = out.join("print/print-001.pdf");
    let pieces: Vec<_> = rows
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    assert_eq!(pieces.len(), 3);
    for (p, m) in pieces.iter().zip(&mrdf) {
        let seq: u32 = p["sequence"].parse().unwrap();
        let r = rec_of(&data, &p["record_id"]);
        let pc = letterpress::output::print::mailmark::postcode_dps(&r.0, &r.1).unwrap();
        let content = format!("11212{:08}{pc}", 4000 + seq);
        assert_eq!(p["barcode"], content);
        assert_eq!(m["barcode"], content);
        // The bars read back from the page at 300 dpi: the window's
        // endorsement zone at 25 mm from the left, 51.1 mm from the top.
        let bars = letterpress::output::print::mailmark::encode(&content).unwrap();
        let (w, _, img) = crate::print::grey(&file, seq as usize, 300, &dir);
        let px = |mm: f64| (mm * 300.0 / 25.4).round() as usize;
        let dark = |x: f64, y: f64| img[px(y) * w + px(x)] < 128;
        let read: String = (0..bars.len())
            .map(|i| {
                let x = 25.0 + i as f64 * 25.4 / 23.5 + 0.225;
                assert!(
                    dark(x, 51.1 + 2.55),
                    "bar {i} of piece {seq} has no tracker"
                );
                four_state(dark(x, 51.1 + 0.5), dark(x, 51.1 + 4.6))
            })
            .collect();
        assert_eq!(read, bars, "piece {seq}");
        // The 2D code, decoded by zxing-cpp: the same bytes.
        let png = dir.join(format!("page-{seq}"));
        let status = Command::new("pdftoppm")
            .args([
                "-png",
                "-r",
                "300",
                "-singlefile",
                "-f",
                &seq.to_string(),
                "-l",
                &seq.to_string(),
            ])
            .arg(&file)
            .arg(&png)
            .status()
            .unwrap();
        assert!(status.success());
        let two_d = format!("JGB 0120000012{:08}{pc}1EC2A4NE      ", 4000 + seq);
        assert_eq!(two_d.len(), 45);
        assert_eq!(zxing(&png.with_extension("png")), [two_d], "piece {seq}");
    }
    // A postcode Royal Mail's formats do not have: that letter fails, named.
    write_jsonl(&data, &[rec("X", "12345", "")]);
    let res = run_layout_with(&layouts, "mm", &data, &dir.join("bad"), &["--print"]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("Mailmark: postcode"),
        "{}",
        describe(&res)
    );
}

/// A record's postcode and DPS from the test's data file.
fn rec_of(data: &std::path::Path, id: &str) -> (String, String) {
    let text = std::fs::read_to_string(data).unwrap();
    let r: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["id"] == id)
        .unwrap();
    (
        r["postcode"].as_str().unwrap().to_owned(),
        r["dps"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_mailmark_section_with_a_bad_field_is_refused_before_anything_renders() {
    use crate::common::*;
    let dir = scratch("mailmark-bad");
    for (name, bad, says) in [
        (
            "rts",
            "two_d: {return_postcode: \"EC2A 4NE 12\"}",
            "two_d.return_postcode",
        ),
        (
            "info",
            "two_d: {information_type: \"\\u00e9\"}",
            "two_d.information_type",
        ),
        ("scid", "two_d: {}", ""),
    ] {
        let layouts = dir.join(name);
        std::fs::create_dir_all(&layouts).unwrap();
        let yaml =
            format!("{{class: \"2\", supply_chain_id: \"12\", postcode_field: postcode, {bad}}}");
        let res = std::panic::catch_unwind(|| mailmark_layout(&layouts, &yaml));
        let Ok(layouts) = res else {
            // Not approvable: `layouts check` names the field.
            assert!(!says.is_empty(), "{name}: the good layout is approved");
            let check = letterpress_with_layouts(&layouts.join("layouts"), &["layouts", "check"]);
            let shown = format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            assert!(shown.contains(says), "{name}: {shown}");
            continue;
        };
        let data = layouts.join("d.jsonl");
        write_jsonl(
            &data,
            &[
                serde_json::json!({"id": "A", "name": "Ann", "street": "1 High St", "city": "LONDON", "postcode": "EC1A 1BB"}),
            ],
        );
        let res = run_layout_with(&layouts, "mm", &data, &layouts.join("out"), &["--print"]);
        match says {
            "" => assert_eq!(res.status.code(), Some(0), "{name}: {}", describe(&res)),
            _ => {
                assert_eq!(res.status.code(), Some(2), "{name}: {}", describe(&res));
                assert!(
                    String::from_utf8_lossy(&res.stderr).contains(says),
                    "{name}: {}",
                    describe(&res)
                );
            }
        }
    }
}
