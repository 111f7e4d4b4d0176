//! Print production: print files in mailing order, duplex padding, the job
//! ticket reconciled against the files, and the piece number known to the
//! template.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn ticket(out: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    csv_rows(&out.join("print/job-ticket.csv"))
}

/// A letter's own page count, from the manifest.
fn manifest_pages(out: &Path, record_id: &str) -> usize {
    manifest(out)["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["record_id"] == record_id && d["channel"] == "pdf")
        .unwrap()["pages"]
        .as_u64()
        .unwrap() as usize
}

fn page_text(pdf: &Path, page: usize) -> String {
    let p = page.to_string();
    let out = Command::new("pdftotext")
        .args(["-f", &p, "-l", &p, pdf.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn duplex_statements_become_a_print_file_in_mailing_order_with_a_ticket_that_reconciles() {
    let out = scratch("print-duplex").join("run");
    let data = root().join("fixtures/statements.jsonl");
    let res = run_layout("annual-statement", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let rows = ticket(&out);
    let pieces: Vec<_> = rows
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    assert_eq!(pieces.len(), 20);

    // Mailing order: country, then postcode, then record id.
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |id: &str| {
        let r = records.iter().find(|r| r["customer_id"] == id).unwrap();
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        (
            s(&r["address"]["country"]),
            s(&r["address"]["postcode"]),
            id.to_owned(),
        )
    };
    for w in pieces.windows(2) {
        assert!(
            key(&w[0]["record_id"]) <= key(&w[1]["record_id"]),
            "{:?} before {:?}",
            w[0],
            w[1]
        );
    }

    // Duplex: every piece starts on a front page, padded to an even count.
    let file = out.join("print/print-001.pdf");
    assert!(qpdf_check(&file).status.success());
    let m = manifest(&out);
    let mut next = 1;
    for (i, p) in pieces.iter().enumerate() {
        let num = |k: &str| p[k].parse::<usize>().unwrap();
        assert_eq!(num("sequence"), i + 1);
        assert_eq!(num("first_page"), next, "{p:?}");
        assert_eq!(num("first_page") % 2, 1, "starts on a front page: {p:?}");
        assert_eq!(num("pages") % 2, 0);
        assert_eq!(num("sheets"), num("pages") / 2);
        assert_eq!(num("last_page"), num("first_page") + num("pages") - 1);
        let sheets = num("sheets");
        let want = if sheets <= 5 {
            "C5/6"
        } else if sheets <= 25 {
            "C4"
        } else {
            "hand insert"
        };
        assert_eq!(p["envelope"], want);
        next = num("last_page") + 1;
        // The letter is where the ticket says; a padded back page is blank.
        let doc = m["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["record_id"] == p["record_id"].as_str())
            .unwrap();
        assert_eq!(doc["piece"]["sequence"], num("sequence"));
        assert_eq!(doc["piece"]["first_page"], num("first_page"));
        let first = page_text(&file, num("first_page"));
        assert!(
            first.contains(p["record_id"].as_str())
                || squash(&first).contains(&squash(&p["postcode"])),
            "page {} is not {}'s",
            num("first_page"),
            p["record_id"]
        );
        let own = doc["pages"].as_u64().unwrap() as usize;
        if own < num("pages") {
            assert!(
                page_text(&file, num("last_page")).trim().is_empty(),
                "padding is blank"
            );
        }
    }
    // Totals reconcile with the file.
    let total = rows.iter().find(|r| r["sequence"] == "TOTAL").unwrap();
    assert_eq!(total["record_id"], "20 pieces");
    let pages: usize = pieces
        .iter()
        .map(|p| p["pages"].parse::<usize>().unwrap())
        .sum();
    let sheets: usize = pieces
        .iter()
        .map(|p| p["sheets"].parse::<usize>().unwrap())
        .sum();
    assert_eq!(total["pages"], pages.to_string());
    assert_eq!(total["sheets"], sheets.to_string());
    assert!(pdfinfo(&file).contains(&format!("Pages:           {pages}")));
    // Every page, blank padding included, has the configured paper size.
    let sizes = Command::new("pdfinfo")
        .args(["-f", "1", "-l", &pages.to_string()])
        .arg(&file)
        .output()
        .unwrap();
    let sizes = String::from_utf8_lossy(&sizes.stdout);
    let lines: Vec<&str> = sizes
        .lines()
        .filter(|l| l.starts_with("Page") && l.contains("size:"))
        .collect();
    assert_eq!(lines.len(), pages);
    assert!(lines.iter().all(|l| l.contains("(A4)")), "{sizes}");
    let file_row = rows.iter().find(|r| r["sequence"] == "FILE").unwrap();
    assert_eq!(file_row["print_file"], "print/print-001.pdf");
    assert_eq!(file_row["pages"], pages.to_string());
    let by_env: usize = rows
        .iter()
        .filter(|r| r["sequence"] == "ENVELOPE")
        .map(|r| {
            r["record_id"]
                .trim_end_matches(" pieces")
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(by_env, 20);
    // Every font embedded.
    let fonts = Command::new("pdffonts").arg(&file).output().unwrap();
    let listing = String::from_utf8_lossy(&fonts.stdout);
    assert!(listing.lines().count() > 2, "{listing}");
    for line in listing.lines().skip(2) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let emb = cols[cols.len() - 5];
        assert_eq!(emb, "yes", "a font is not embedded: {line}");
    }
    // The JSON ticket says the same, and verify knows the print files.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("print/job-ticket.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), rows.len());
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", describe(&v));
}

#[test]
fn files_split_by_sheets_a_sequence_file_sets_the_order_and_the_template_knows_its_piece() {
    let dir = scratch("print-split");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let v1 = layouts.join("annual-statement/1");
    let yaml = std::fs::read_to_string(v1.join("layout.yaml")).unwrap();
    std::fs::write(
        v1.join("layout.yaml"),
        yaml.replace("max_sheets_per_file: 1000", "max_sheets_per_file: 6"),
    )
    .unwrap();
    let letter = std::fs::read_to_string(v1.join("letter.typ")).unwrap();
    std::fs::write(
        v1.join("letter.typ"),
        format!("{letter}\n#place(bottom + left, dy: 1cm, text(size: 6pt)[Piece #json(\"/letterpress/piece.json\").sequence])\n"),
    )
    .unwrap();
    approve(&layouts, "annual-statement@1");
    // The presort tool's order: the input reversed.
    let data = root().join("fixtures/statements.jsonl");
    let ids: Vec<String> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["customer_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let seq = dir.join("presorted.txt");
    std::fs::write(
        &seq,
        ids.iter().rev().cloned().collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let out = dir.join("run");
    let res = run_layout_with(
        &layouts,
        "annual-statement",
        &data,
        &out,
        &["--print", "--sequence", seq.to_str().unwrap()],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let rows = ticket(&out);
    let pieces: Vec<_> = rows
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    let order: Vec<&str> = pieces.iter().map(|p| p["record_id"].as_str()).collect();
    let reversed: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(order, reversed, "the sequence file's order");
    // No file over 6 sheets unless one piece alone is larger.
    let files: Vec<_> = rows.iter().filter(|r| r["sequence"] == "FILE").collect();
    assert!(files.len() > 3, "{} files", files.len());
    for f in &files {
        let in_file: Vec<_> = pieces
            .iter()
            .filter(|p| p["print_file"] == f["print_file"])
            .collect();
        let sheets: usize = in_file
            .iter()
            .map(|p| p["sheets"].parse::<usize>().unwrap())
            .sum();
        assert!(
            sheets <= 6 || in_file.len() == 1,
            "{} has {sheets} sheets",
            f["print_file"]
        );
        let path = out.join(&f["print_file"]);
        assert!(qpdf_check(&path).status.success());
        assert!(pdfinfo(&path).contains(&format!("Pages:           {}", f["pages"])));
    }
    // Each letter prints its own piece number (at the end of its text).
    for p in &pieces {
        let (first, last): (usize, usize) = (
            p["first_page"].parse().unwrap(),
            p["last_page"].parse().unwrap(),
        );
        let text: String = (first..=last)
            .map(|n| page_text(&out.join(&p["print_file"]), n))
            .collect();
        assert!(
            text.contains(&format!("Piece {}", p["sequence"])),
            "{}: {text}",
            p["record_id"]
        );
    }
}

#[test]
fn a_reprint_has_the_same_pages_and_numbers_and_is_recorded() {
    let out = scratch("reprint").join("run");
    let data = root().join("fixtures/statements.jsonl");
    let res = run_layout("annual-statement", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let rows = ticket(&out);
    let piece = |n: &str| rows.iter().find(|r| r["sequence"] == n).unwrap().clone();
    let (p3, p7) = (piece("3"), piece("7"));
    let by_record = piece("12")["record_id"].clone();
    let res = letterpress(&[
        "reprint",
        out.to_str().unwrap(),
        "--pieces",
        "7,3",
        "--records",
        &by_record,
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // The reprint's own ticket, pieces in sequence order, their pages unchanged.
    let mut rdr = csv::Reader::from_path(out.join("print/reprint-001-ticket.csv")).unwrap();
    let re: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let seqs: Vec<&str> = re
        .iter()
        .map(|r| &r[0])
        .filter(|s| s.parse::<u32>().is_ok())
        .collect();
    assert_eq!(seqs, ["3", "7", "12"]);
    let file = out.join("print/reprint-001-001.pdf");
    assert!(qpdf_check(&file).status.success());
    let original = out.join(&p3["print_file"]);
    let (o3, r3) = (
        page_text(&original, p3["first_page"].parse().unwrap()),
        page_text(&file, 1),
    );
    assert_eq!(o3, r3, "the reprint's first page is piece 3's first page");
    let pages: usize = re
        .iter()
        .filter(|r| r[0].parse::<u32>().is_ok())
        .map(|r| r[5].parse::<usize>().unwrap())
        .sum();
    assert_eq!(
        pages,
        p3["pages"].parse::<usize>().unwrap()
            + p7["pages"].parse::<usize>().unwrap()
            + piece("12")["pages"].parse::<usize>().unwrap()
    );
    assert!(pdfinfo(&file).contains(&format!("Pages:           {pages}")));
    for r in re.iter().filter(|r| r[0].parse::<u32>().is_ok()) {
        assert_eq!(
            r[7],
            piece(&r[0])["envelope"],
            "a reprint keeps the envelope class"
        );
    }
    // Recorded, and verify accepts it (and catches a change to it).
    let log = std::fs::read_to_string(out.join("print/reprints.jsonl")).unwrap();
    assert!(log.contains("\"pieces\":[3,7,12]"), "{log}");
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", describe(&v));
    std::fs::write(&file, b"%PDF-1.7 broken").unwrap();
    let v = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1), "{}", describe(&v));
    assert!(String::from_utf8_lossy(&v.stdout)
        .contains("altered: print/reprint-001-001.pdf (reprint 1)"));
    // Unknown pieces are refused.
    let res = letterpress(&["reprint", out.to_str().unwrap(), "--pieces", "99"]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("piece 99"));
}

#[test]
fn an_address_that_does_not_fit_the_window_fails_that_letter() {
    let dir = scratch("window");
    let rec = |id: &str, line1: &str| {
        serde_json::json!({"customer_id": id, "first_name": "Ann", "last_name": "Lee",
            "address": {"line1": line1, "line2": "Industrial Estate Road Number Seven Hundred and Seventy-Seven",
                        "postcode": "E1 1AA", "city": "London"},
            "product": "Saver", "account_number": "1", "opened_on": "2026-01-02", "contact_preference": "print"})
        .to_string()
    };
    let data = dir.join("d.jsonl");
    let long = "Flat 12, The Very Long Named Building Complex, ".repeat(4);
    std::fs::write(&data, [rec("W-1", "1 Road"), rec("W-2", &long)].join("\n")).unwrap();
    let out = dir.join("out");
    let res = run_layout("welcome-letter", &data, &out, &[]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let m = manifest(&out);
    let docs = m["documents"].as_array().unwrap();
    let pdf = |id: &str| {
        docs.iter()
            .find(|d| d["record_id"] == id && d["channel"] == "pdf")
            .unwrap()
    };
    assert_eq!(pdf("W-1")["status"], "rendered");
    let err = pdf("W-2")["error"].as_str().unwrap();
    assert!(
        err.contains("does not fit the envelope window") && err.contains("below its bottom edge"),
        "{err}"
    );
    assert!(!out.join("pdf/W-2.pdf").exists());
    // Every sample customer's address fits.
    let all = dir.join("all");
    let res = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &all,
        &[],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
}

/// Page `page` of a PDF as a grey image: (width, height, pixels).
pub fn grey(pdf: &Path, page: usize, dpi: u32, dir: &Path) -> (usize, usize, Vec<u8>) {
    let prefix = dir.join(format!("grey-{page}"));
    let p = page.to_string();
    let res = Command::new("pdftoppm")
        .args([
            "-gray",
            "-r",
            &dpi.to_string(),
            "-f",
            &p,
            "-l",
            &p,
            "-singlefile",
        ])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", describe(&res));
    let data = std::fs::read(prefix.with_extension("pgm")).unwrap();
    // P5 header: magic, width, height, maximum, one white-space, pixels.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while data[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !data[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..i]).into_owned());
    }
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, data[i + 1..].to_vec())
}

/// The sample welcome letters printed (`run --print`, PDF only) into
/// `<dir>/welcome`.
fn printed_welcome(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("welcome");
    let res = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &out,
        &["--print", "--channels", "pdf"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    out
}

/// The sample statements printed (`run --print`) into `<scratch>/run`.
fn printed_statements(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(name);
    let out = dir.join("run");
    let res = run_layout(
        "annual-statement",
        &root().join("fixtures/statements.jsonl"),
        &out,
        &["--print"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    (dir, out)
}

#[test]
fn every_sheet_carries_its_omr_marks() {
    let (dir, out) = printed_statements("omr");
    let rows = ticket(&out);
    let pieces: Vec<_> = rows
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    // The layout's geometry: left 4, top 120, pitch 4, length 10 (mm).
    let dpi = 100;
    let px = |mm: f64| (mm * dpi as f64 / 25.4).round() as usize;
    let file = out.join("print/print-001.pdf");
    let mut sheet_in_file = 0;
    let mut multi = 0;
    let mut padded_checked = 0;
    for p in &pieces {
        let sheets: usize = p["sheets"].parse().unwrap();
        let first: usize = p["first_page"].parse().unwrap();
        if sheets > 1 {
            multi += 1;
        }
        for s in 0..sheets {
            sheet_in_file += 1;
            let last = s + 1 == sheets;
            let n = sheet_in_file % 8;
            let mut want = vec![true, last, n & 1 == 1, n & 2 == 2, n & 4 == 4, false, true];
            want[5] = want.iter().filter(|b| **b).count() % 2 == 1;
            let (w, _, img) = grey(&file, first + 2 * s, dpi, &dir);
            let seen: Vec<bool> = (0..7)
                .map(|i| {
                    let (x, y) = (px(9.0), px(120.0 + 4.0 * i as f64));
                    (y - 1..=y + 1).any(|yy| img[yy * w + x] < 100)
                })
                .collect();
            assert_eq!(
                seen,
                want,
                "sheet {} of piece {} (sheet {sheet_in_file} of the file)",
                s + 1,
                p["sequence"]
            );
            // A blank padding page (the back of the last sheet) carries them too.
            let own = manifest_pages(&out, &p["record_id"]);
            let padded: usize = p["pages"].parse().unwrap();
            if last && own < padded {
                let (w, _, img) = grey(&file, first + padded - 1, dpi, &dir);
                let back: Vec<bool> = (0..7)
                    .map(|i| {
                        let (x, y) = (px(9.0), px(120.0 + 4.0 * i as f64));
                        (y - 1..=y + 1).any(|yy| img[yy * w + x] < 100)
                    })
                    .collect();
                assert_eq!(back, want, "the padding page of piece {}", p["sequence"]);
                padded_checked += 1;
            }
        }
    }
    assert!(multi >= 3, "the sample has multi-sheet pieces");
    assert!(padded_checked >= 3, "the sample has padded pieces");
}

/// Reads the DataMatrix in the left margin of a page (pdftoppm + dmtxread).
pub fn read_code(pdf: &Path, page: usize, dir: &Path) -> String {
    let prefix = dir.join(format!("code-{page}"));
    let p = page.to_string();
    let res = Command::new("pdftoppm")
        .args(["-png", "-r", "300", "-f", &p, "-l", &p, "-singlefile"])
        .args(["-x", "0", "-y", "2900", "-W", "400", "-H", "400"])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", describe(&res));
    let out = Command::new("dmtxread")
        .args(["-n", "-m", "5000"])
        .arg(prefix.with_extension("png"))
        .output()
        .expect("dmtxread from dmtx-utils is installed (see .ci/run)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn every_sheet_carries_a_datamatrix_that_reads_back() {
    let dir = scratch("datamatrix");
    // The sample welcome letter: one sheet a piece.
    let out = printed_welcome(&dir);
    let run_id = manifest(&out)["run_id"].as_str().unwrap().to_owned();
    let file = out.join("print/print-001.pdf");
    for seq in [1usize, 2, 17] {
        assert_eq!(read_code(&file, seq, &dir), format!("{run_id}|{seq}|1/1"));
    }
    // Statements with a code too: sheet i of n on every front page.
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let yaml = layouts.join("annual-statement/1/layout.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(
        &yaml,
        text.replace(
            "  omr: {",
            "  datamatrix: {left: 5, top: 255, module: 0.5}\n  omr: {",
        ),
    )
    .unwrap();
    approve(&layouts, "annual-statement@1");
    let out = dir.join("statements");
    let res = run_layout_with(
        &layouts,
        "annual-statement",
        &root().join("fixtures/statements.jsonl"),
        &out,
        &["--print"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let run_id = manifest(&out)["run_id"].as_str().unwrap().to_owned();
    let file = out.join("print/print-001.pdf");
    let rows = ticket(&out);
    let big = rows
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .max_by_key(|r| r["sheets"].parse::<usize>().unwrap())
        .unwrap();
    let (first, sheets): (usize, usize) = (
        big["first_page"].parse().unwrap(),
        big["sheets"].parse().unwrap(),
    );
    assert!(sheets >= 3, "{big:?}");
    for s in 0..sheets {
        assert_eq!(
            read_code(&file, first + 2 * s, &dir),
            format!("{run_id}|{}|{}/{sheets}", big["sequence"], s + 1)
        );
    }
}

#[test]
fn each_piece_gets_its_intelligent_mail_barcode_drawn_and_in_the_ticket() {
    let dir = scratch("imb");
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let v2 = layouts.join("welcome-letter/2");
    let yaml = std::fs::read_to_string(v2.join("layout.yaml")).unwrap();
    std::fs::write(
        v2.join("layout.yaml"),
        yaml.replace(
            "  window: din-5008-b\n",
            "  window: din-5008-b\n  imb: {barcode_id: \"00\", service_type: \"270\", mailer_id: \"123456\", serial_offset: 1000}\n",
        ),
    )
    .unwrap();
    let letter = std::fs::read_to_string(v2.join("letter.typ")).unwrap();
    std::fs::write(
        v2.join("letter.typ"),
        letter.replacen(
            "#show: page-setup\n",
            "#show: page-setup\n#import \"/letterpress/print.typ\": imb\n#let piece = json(\"/letterpress/piece.json\")\n#place(top + right, dy: -8mm, imb(piece.imb))\n",
            1,
        ),
    )
    .unwrap();
    approve(&layouts, "welcome-letter@2");
    let zips = ["12345", "123456789", "12345678901", "20260-1234"];
    let lines: Vec<String> = zips
        .iter()
        .enumerate()
        .map(|(i, zip)| {
            serde_json::json!({"customer_id": format!("U-{i}"), "first_name": "Ann", "last_name": "Lee",
                "address": {"line1": "1 Main St", "postcode": zip, "city": "Springfield"},
                "product": "Checking", "account_number": "1", "opened_on": "2026-01-02", "contact_preference": "print"})
            .to_string()
        })
        .collect();
    let data = dir.join("us.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = dir.join("run");
    let res = run_layout_with(&layouts, "welcome-letter", &data, &out, &["--print"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let rows = ticket(&out);
    let file = out.join("print/print-001.pdf");
    for p in rows.iter().filter(|r| r["sequence"].parse::<u32>().is_ok()) {
        let seq: u32 = p["sequence"].parse().unwrap();
        let zip: String = p["postcode"].chars().filter(char::is_ascii_digit).collect();
        let tracking = format!("00270123456{:09}", 1000 + seq);
        assert_eq!(p["barcode"], format!("{tracking}-{zip}"));
        let bars = letterpress::output::print::imb::encode(&tracking, &zip).unwrap();
        // Read the drawn bars back: 300 dpi, the code's top 12 mm from the
        // page top, its right end at 190 mm.
        let (w, _, img) = grey(&file, seq as usize, 300, &dir);
        let px = |mm: f64| (mm * 300.0 / 25.4).round() as usize;
        let inch = |i: f64| (i * 300.0).round() as usize;
        let (top, left) = (px(12.0), px(190.0) - inch(65.0 / 22.0));
        let dark = |x: usize, y: usize| img[y * w + x] < 128;
        let read: String = (0..65)
            .map(|i| {
                let x = left + inch(i as f64 / 22.0) + inch(0.01);
                let up = dark(x, top + inch(0.01));
                let down = dark(x, top + inch(0.135));
                let track = dark(x, top + inch(0.0725));
                assert!(track, "bar {i} of piece {seq} has no tracker");
                four_state(up, down)
            })
            .collect();
        assert_eq!(read, bars, "piece {seq}");
    }
    // A UK postcode has no ZIP digits to speak of: that letter fails, named.
    let uk = dir.join("uk.jsonl");
    std::fs::write(&uk, lines[0].replace("12345", "SW1A 1AA")).unwrap();
    let res = run_layout_with(
        &layouts,
        "welcome-letter",
        &uk,
        &dir.join("uk"),
        &["--print"],
    );
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    assert!(String::from_utf8_lossy(&res.stderr).contains("IMb: routing code"));
}

#[test]
fn the_address_helpers_put_the_address_where_each_window_shows_it() {
    let dir = scratch("address-helpers");
    for (window, paper, format) in [
        ("us-10", "us-letter", "us-letter"),
        ("din-5008-a", "a4", "a4"),
        ("din-5008-b", "a4", "a4"),
    ] {
        let layouts = dir.join(window).join("layouts");
        let v = layouts.join("addr/1");
        std::fs::create_dir_all(&v).unwrap();
        std::fs::write(
            v.join("layout.yaml"),
            format!(
                "name: addr\nversion: 1\ntitle: Address\nstatus: approved\nid_field: id\npage: {{format: {format}}}\n\
                 print: {{window: {window}}}\nfields:\n  - {{name: id, type: string, required: true}}\n\
                 \x20 - {{name: name, type: string, required: true}}\n  - {{name: street, type: string, required: true}}\n\
                 \x20 - {{name: city, type: string, required: true}}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            v.join("letter.typ"),
            format!(
                "#import \"/letterpress/print.typ\": address-window\n#let r = json(\"/record.json\")\n\
                 #set page(paper: \"{paper}\", margin: (left: 25mm, top: 20mm, rest: 20mm))\n\
                 #address-window([#r.name \\ #r.street \\ #r.city], return-line: [Northwind Bank · 1 Harbour Square], window: \"{window}\", barcode: json(\"/letterpress/piece.json\").imb)\n\
                 #v(110mm)\nDear #r.name,\n"
            ),
        )
        .unwrap();
        approve(&layouts, "addr@1");
        let data = dir.join(window).join("d.jsonl");
        let long = "A very long street name that goes on and on, ".repeat(9);
        std::fs::write(
            &data,
            format!(
                "{}\n{}\n",
                serde_json::json!({"id": "ok", "name": "Ann Lee", "street": "1 Main St", "city": "Springfield IL 62701"}),
                serde_json::json!({"id": "long", "name": "Ann Lee", "street": long, "city": "Springfield IL 62701"}),
            ),
        )
        .unwrap();
        let out = dir.join(window).join("out");
        let res = run_layout_with(&layouts, "addr", &data, &out, &[]);
        assert_eq!(res.status.code(), Some(1), "{window}: {}", describe(&res));
        let m = manifest(&out);
        assert_eq!(
            m["documents"][0]["status"], "rendered",
            "{window}: {}",
            m["documents"][0]
        );
        let err = m["documents"][1]["error"].as_str().unwrap();
        assert!(
            err.contains("does not fit the envelope window"),
            "{window}: {err}"
        );
        assert!(pdftotext(&out.join("pdf/ok.pdf")).contains("Springfield IL 62701"));
    }
}

/// The print file's PDF/VT document parts, read back with qpdf: one part
/// per mail piece in order, its pages and metadata those of the ticket,
/// and every page naming its part.
#[test]
fn print_files_carry_one_document_part_per_piece_matching_the_ticket() {
    let (_, out) = printed_statements("dparts");
    let file = out.join("print/print-001.pdf");
    assert!(qpdf_check(&file).status.success());
    let json = Command::new("qpdf")
        .args(["--json=2", "--json-key=qpdf"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(json.status.success(), "{}", describe(&json));
    let j: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let objects = &j["qpdf"][1];
    let get = |r: &serde_json::Value| &objects[format!("obj:{}", r.as_str().unwrap())]["value"];
    let catalog = get(&objects["trailer"]["value"]["/Root"]);
    let root = get(&catalog["/DPartRoot"]);
    assert_eq!(root["/Type"], "/DPartRoot");
    let node = get(&root["/DPartRootNode"]);
    let leaves = node["/DParts"][0].as_array().unwrap();
    // Page object → page number.
    let kids = get(&catalog["/Pages"])["/Kids"].as_array().unwrap();
    let page_no = |r: &serde_json::Value| kids.iter().position(|k| k == r).unwrap() + 1;
    let run_id = manifest(&out)["run_id"].as_str().unwrap().to_owned();
    let rows = ticket(&out);
    let pieces: Vec<_> = rows
        .iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    assert_eq!(leaves.len(), pieces.len());
    for (leaf_ref, p) in leaves.iter().zip(&pieces) {
        let leaf = get(leaf_ref);
        let dpm = &leaf["/DPM"];
        assert_eq!(dpm["/Piece"].to_string(), p["sequence"].as_str());
        assert_eq!(dpm["/Sheets"].to_string(), p["sheets"].as_str());
        assert_eq!(dpm["/RunID"], format!("u:{run_id}"));
        assert_eq!(dpm["/Envelope"], format!("u:{}", p["envelope"]));
        assert_eq!(dpm["/Records"][0], format!("u:{}", p["record_id"]));
        let (first, last) = (page_no(&leaf["/Start"]), page_no(&leaf["/End"]));
        assert_eq!(first.to_string(), p["first_page"]);
        assert_eq!(last.to_string(), p["last_page"]);
        for k in &kids[first - 1..last] {
            assert_eq!(
                &get(k)["/DPart"],
                leaf_ref,
                "page {} names its part",
                page_no(k)
            );
        }
    }
}

/// The pixels where two grey pages differ clearly, as (x, y) in mm.
fn differences(
    a: &(usize, usize, Vec<u8>),
    b: &(usize, usize, Vec<u8>),
    dpi: u32,
) -> Vec<(f64, f64)> {
    assert_eq!((a.0, a.1), (b.0, b.1), "same page size");
    let mm = |px: usize| px as f64 * 25.4 / f64::from(dpi);
    a.2.iter()
        .zip(&b.2)
        .enumerate()
        .filter(|(_, (x, y))| x.abs_diff(**y) > 64)
        .map(|(i, _)| (mm(i % a.0), mm(i / a.0)))
        .collect()
}

#[test]
fn print_files_show_each_letter_as_its_own_pdf_with_shared_fonts() {
    let dir = scratch("print-same");
    let out = printed_welcome(&dir);
    let file = out.join("print/print-001.pdf");
    assert!(qpdf_check(&file).status.success());
    // The records spooled for rendering in mailing order, and the pages
    // kept from each letter's one layout, are gone; no letter was laid out
    // a second time.
    assert!(!out_has_state(&out));
    assert_eq!(manifest(&out)["print"]["laid_out_again"], 0);
    let pieces: Vec<_> = ticket(&out)
        .into_iter()
        .filter(|r| r["sequence"].parse::<u32>().is_ok())
        .collect();
    assert!(pieces.len() > 40, "{}", pieces.len());
    let mut own_bytes = 0;
    for p in &pieces {
        let own = out.join(format!("pdf/{}.pdf", p["record_id"]));
        own_bytes += std::fs::metadata(&own).unwrap().len();
        let first: usize = p["first_page"].parse().unwrap();
        for page in 0..manifest_pages(&out, &p["record_id"]) {
            assert_eq!(
                page_text(&file, first + page),
                page_text(&own, page + 1),
                "piece {} page {}",
                p["sequence"],
                page + 1
            );
            // The same picture, but for the DataMatrix the layout puts at
            // 5 mm from the left, 255 mm from the top (on the front).
            let dpi = 40;
            let printed = grey(&file, first + page, dpi, &dir);
            let letter = grey(&own, page + 1, dpi, &dir);
            for (x, y) in differences(&printed, &letter, dpi) {
                assert!(
                    page == 0 && (3.0..25.0).contains(&x) && (250.0..285.0).contains(&y),
                    "piece {} page {} differs from its letter at {x:.0} mm, {y:.0} mm",
                    p["sequence"],
                    page + 1
                );
            }
        }
    }
    // Fonts shared by the letters laid out together (runs of some tens of
    // pages), not embedded once a letter.
    let fonts = Command::new("pdffonts").arg(&file).output().unwrap();
    assert!(fonts.status.success(), "{}", describe(&fonts));
    let names: Vec<String> = String::from_utf8_lossy(&fonts.stdout)
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split_once('+').map_or(n, |(_, f)| f).to_owned())
        .collect();
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    for font in &distinct {
        let subsets = names.iter().filter(|n| *n == font).count();
        assert!(
            subsets <= pieces.len() / 16 + 1,
            "{font} embedded {subsets} times for {} letters",
            pieces.len()
        );
    }
    let print_bytes = std::fs::metadata(&file).unwrap().len();
    assert!(
        print_bytes * 3 < own_bytes,
        "print file {print_bytes} bytes, the letters' own PDFs {own_bytes}"
    );
}

/// A print run checks duplicate ids and names files in one pass over the
/// records, and its later passes take those verdicts instead of keeping
/// every id again: its letters and its email-only records must come out
/// with the same failures and the same file names as the same records run
/// without `--print`, where every pass keeps its own.
#[test]
fn a_print_run_refuses_duplicates_and_names_files_as_a_run_without_print() {
    let dir = scratch("print-known");
    let raw = welcome_records(&dir.join("raw.jsonl"), 24, 11);
    // (id, by email only): a name taken in another letter case, a repeated
    // id (as a letter and as an email), an id that is no plain file name.
    let ids = [
        ("A-1", false),
        ("a-1", true),
        ("A-1", false),
        ("B/2", false),
        ("b-3", false),
        ("B-3", true),
        ("a-1", true),
        ("B/2", true),
        ("c-4", true),
        ("C-4", false),
    ];
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&raw)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            let (id, email) = ids.get(i).copied().unwrap_or(("", i % 3 == 0));
            if !id.is_empty() {
                r["customer_id"] = id.into();
            }
            r["contact_preference"] = (if email { "email" } else { "print" }).into();
            r
        })
        .collect();
    let data = dir.join("records.jsonl");
    write_jsonl(&data, &records);
    let layouts = root().join("layouts");
    let run = |out: &Path, print: bool| {
        let mut a = vec![
            "run",
            "--layout",
            "welcome-letter@4",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--as-of",
            "2026-12-06",
            "--channels",
            "pdf,email",
        ];
        if print {
            a.push("--print");
        }
        let res = letterpress_with_layouts(&layouts, &a);
        // Duplicates fail: exit 1 (some records failed).
        assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
        let mut entries: Vec<(u64, String, String, String, String)> =
            std::fs::read_to_string(out.join("documents.jsonl"))
                .unwrap()
                .lines()
                .map(|l| {
                    let e: serde_json::Value = serde_json::from_str(l).unwrap();
                    let text = |k: &str| e[k].as_str().unwrap_or("").to_owned();
                    (
                        e["index"].as_u64().unwrap(),
                        text("channel"),
                        text("status"),
                        text("error"),
                        text("path"),
                    )
                })
                .collect();
        entries.sort();
        entries
    };
    let printed = run(&dir.join("print"), true);
    let plain = run(&dir.join("plain"), false);
    assert_eq!(printed, plain);
    // What the comparison covers: two duplicates failed, and names taken
    // in another letter case got the hash suffix, by letter and by email.
    let failed = |ch: &str| {
        printed
            .iter()
            .filter(|e| e.1 == ch && e.3.contains("duplicate record id"))
            .count()
    };
    assert_eq!((failed("pdf"), failed("email")), (3, 3));
    let path = |index: u64, ch: &str| {
        let e = printed.iter().find(|e| e.0 == index && e.1 == ch).unwrap();
        e.4.clone()
    };
    assert_eq!(path(0, "pdf"), "pdf/A-1.pdf");
    assert!(
        path(1, "email").starts_with("email/a-1~"),
        "{}",
        path(1, "email")
    );
    assert!(
        path(5, "email").starts_with("email/B-3~"),
        "{}",
        path(5, "email")
    );
    assert!(path(9, "pdf").starts_with("pdf/C-4~"), "{}", path(9, "pdf"));
    assert!(!out_has_state(&dir.join("print")));
}

/// Whether a finished print run left its working files behind.
fn out_has_state(out: &Path) -> bool {
    [
        "print-records.jsonl",
        "print-pages.pdfs",
        "print-pieces.jsonl",
    ]
    .iter()
    .any(|f| out.join(f).exists())
}
