//! Every customer in a form they can read: large-print letters from the
//! same template, tagged PDFs whose structure follows the text, and web
//! letters checked with axe-core in a real headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The day the samples' large-print and web versions were approved.
const AS_OF: &str = "2026-11-28";

/// Words of a PDF page with their font size in points, from the height of
/// poppler's word boxes (Noto Sans: ascent + descent = 1.362 em), and the
/// top-left corner of each box in points.
fn word_sizes(pdf: &Path, page: usize) -> Vec<(String, f64, f64, f64)> {
    let p = page.to_string();
    let out = Command::new("pdftotext")
        .args(["-f", &p, "-l", &p, "-bbox"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext is installed");
    let text = String::from_utf8(out.stdout).unwrap();
    let num = |line: &str, key: &str| -> f64 {
        let at = line.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
        line[at..].split('"').next().unwrap().parse().unwrap()
    };
    text.lines()
        .filter(|l| l.trim_start().starts_with("<word "))
        .map(|l| {
            let word = l[l.find('>').unwrap() + 1..l.rfind("</word>").unwrap()].to_owned();
            let (x, y0, y1) = (num(l, "xMin"), num(l, "yMin"), num(l, "yMax"));
            (word, (y1 - y0) / 1.362, x, y0)
        })
        .collect()
}

/// Whether a point (pt) on the first page lies in the DIN 5008 form B
/// window (20 mm from the left, 45 mm from the top, 85 × 45 mm), where the
/// address keeps its size, or in the logo (an image whose lettering poppler
/// reads as words) above it.
fn in_window_or_logo(x: f64, y: f64) -> bool {
    let mm = 72.0 / 25.4;
    let window =
        (20.0 * mm - 1.0..105.0 * mm).contains(&x) && (45.0 * mm - 1.0..90.0 * mm).contains(&y);
    window || y < 25.0 * mm
}

#[test]
fn large_print_letters_come_from_the_same_template() {
    let out = scratch("large-print");
    let data = root().join("fixtures/customers.csv");
    let res = run_layout(
        "welcome-letter@4",
        &data,
        &out,
        &["--as-of", AS_OF, "--channels", "pdf"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let m = manifest(&out);
    let docs = entries(&m);
    let asked: Vec<String> = csv_rows(&data)
        .into_iter()
        .filter(|r| r["accessibility"].to_lowercase().contains("large"))
        .map(|r| r["customer_id"].clone())
        .collect();
    assert_eq!(asked.len(), 3, "the fixture has customers who asked");
    for (key, doc) in &docs {
        if doc["status"] != "rendered" {
            continue;
        }
        let large = asked.contains(&key.0);
        let want = if large { "large-print" } else { "standard" };
        assert_eq!(
            doc["format"], want,
            "{key:?}: the manifest records the format"
        );
        let pdf = out.join(doc["path"].as_str().unwrap());
        let pages = doc["pages"].as_u64().unwrap() as usize;
        // Text size: every word outside the envelope window at least 16 pt in
        // large print; the body of a standard letter is smaller.
        let mut smallest: f64 = f64::MAX;
        for page in 1..=pages {
            for (word, size, x, y) in word_sizes(&pdf, page) {
                if page == 1 && in_window_or_logo(x, y) {
                    continue;
                }
                if large {
                    assert!(
                        size >= 15.8,
                        "{key:?} page {page}: `{word}` at {size:.1} pt"
                    );
                }
                smallest = smallest.min(size);
            }
        }
        if large {
            assert!(pages >= 2, "{key:?}: large print takes more room");
            assert!(pdfinfo(&pdf).contains("Tagged:          yes"));
        } else {
            assert!(smallest < 11.0, "{key:?}: standard text is small");
            assert_eq!(pages, 1, "{key:?}");
        }
    }
    // The same wording in both formats.
    let large = pdftotext(
        &out.join(
            docs[&("C-01239".into(), "pdf".into())]["path"]
                .as_str()
                .unwrap(),
        ),
    );
    for sentence in [
        "Financial Services Compensation Scheme",
        "Financial Ombudsman Service",
    ] {
        assert!(squash(&large).contains(&squash(sentence)), "{sentence}");
    }
}

type Entries = std::collections::BTreeMap<(String, String), serde_json::Value>;

/// Runs `welcome-letter@4` from a copy of the layouts in which `edit`
/// changed the file `rel` of that version (approved again), on `records`,
/// with `channels`; returns the run folder and what the run printed.
fn run_edited(
    name: &str,
    rel: &str,
    edit: impl Fn(&str) -> String,
    records: &[serde_json::Value],
    channels: &str,
) -> (PathBuf, std::process::Output) {
    let dir = scratch(name);
    let layouts = dir.join("layouts");
    copy_tree(&root().join("layouts"), &layouts);
    let file = layouts.join("welcome-letter/4").join(rel);
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changes {rel}");
    std::fs::write(&file, edited).unwrap();
    approve_on(&layouts, "welcome-letter@4", AS_OF);
    let (out, data) = (dir.join("out"), dir.join("data.jsonl"));
    write_jsonl(&data, records);
    let extra = ["--as-of", AS_OF, "--channels", channels];
    let res = run_layout_with(&layouts, "welcome-letter@4", &data, &out, &extra);
    (out, res)
}

/// [`run_edited`], which some records fail (exit 1): the run's entries.
fn run_edited_failing(
    name: &str,
    rel: &str,
    edit: impl Fn(&str) -> String,
    records: &[serde_json::Value],
    channels: &str,
) -> (PathBuf, Entries) {
    let (out, res) = run_edited(name, rel, edit, records, channels);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    let docs = entries(&manifest(&out));
    (out, docs)
}

/// A customer who wants letters, with `extra` fields.
fn by_post(id: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut rec = customer(id, extra);
    rec["contact_preference"] = "print".into();
    rec
}

#[test]
fn small_print_in_a_large_print_letter_fails_it() {
    // A template that writes a fixed size instead of size(..).
    let (_, docs) = run_edited_failing(
        "large-print-small",
        "letter.typ",
        |t| {
            t.replace(
                "#set text(size: size(8pt), fill: muted)",
                "#set text(size: 8pt, fill: muted)",
            )
        },
        &[
            by_post("L-1", serde_json::json!({"accessibility": "large-print"})),
            by_post("S-1", serde_json::json!({})),
            by_post("B-1", serde_json::json!({"accessibility": "braille"})),
        ],
        "pdf",
    );
    assert_eq!(docs[&("S-1".into(), "pdf".into())]["status"], "rendered");
    let large = &docs[&("L-1".into(), "pdf".into())];
    assert_eq!(large["status"], "failed");
    let why = large["error"].as_str().unwrap();
    assert!(
        why.contains("large print")
            && why.contains("8.0 pt")
            && why.contains("size(..)")
            && why.contains("Financial"),
        "{why}"
    );
    // A format the layout does not make is never silently replaced.
    let braille = docs[&("B-1".into(), "pdf".into())]["error"]
        .as_str()
        .unwrap();
    assert!(
        braille.contains("field `accessibility`") && braille.contains("braille"),
        "{braille}"
    );
}

/// `pdfinfo -struct-text`: the tag tree with its text, in reading order.
fn struct_text(pdf: &Path) -> String {
    let out = Command::new("pdfinfo")
        .arg("-struct-text")
        .arg(pdf)
        .output()
        .expect("pdfinfo is installed");
    String::from_utf8(out.stdout).unwrap()
}

/// The position of the first line of `tree` that contains all of `parts`.
fn line_of(tree: &str, parts: &[&str]) -> usize {
    tree.lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no line with {parts:?} in\n{tree}"))
}

/// The document language of a PDF, from its catalog.
fn pdf_lang(pdf: &Path) -> String {
    let out = Command::new("qpdf")
        .args(["--json", "--json-key=qpdf"])
        .arg(pdf)
        .output()
        .expect("qpdf is installed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects = json["qpdf"][1].as_object().unwrap();
    objects
        .values()
        .filter_map(|o| o["value"]["/Lang"].as_str())
        .next()
        .unwrap_or_default()
        .trim_start_matches("u:")
        .to_owned()
}

#[test]
fn tagged_letters_read_in_order_in_their_language() {
    let out = render_ok(
        "welcome-letter@4",
        "fixtures/customers.csv",
        "tagged",
        &["--as-of", AS_OF, "--channels", "pdf"],
    );
    let docs = entries(&manifest(&out));
    for (id, lang, name, heading) in [
        (
            "C-01001",
            "en-GB",
            "James Whitfield",
            "Welcome to Northwind Bank",
        ),
        (
            "C-01022",
            "de-DE",
            "Müller-Lüdenscheidt",
            "Willkommen bei der Northwind Bank",
        ),
        (
            "C-01309",
            "es-ES",
            "García López",
            "Bienvenido a Northwind Bank",
        ),
    ] {
        let pdf = out.join(docs[&(id.into(), "pdf".into())]["path"].as_str().unwrap());
        assert_eq!(pdf_lang(&pdf), lang, "{id}");
        assert!(
            pdfinfo(&pdf).contains(&format!("Title:           {heading}")),
            "{id}"
        );
        let tree = struct_text(&pdf);
        let address = line_of(&tree, &[name]);
        let h1 = line_of(&tree, &["H1", heading]);
        let next_paragraph = tree
            .lines()
            .skip(h1 + 1)
            .position(|l| l.trim_start().starts_with("P "))
            .unwrap();
        assert!(
            address < h1,
            "{id}: the address comes before the heading\n{tree}"
        );
        assert!(
            next_paragraph <= 1,
            "{id}: paragraphs follow the heading\n{tree}"
        );
        let protection = line_of(&tree, &["Scheme"]);
        assert!(h1 < protection, "{id}");
    }
    let out = render_ok(
        "annual-statement@2",
        "fixtures/statements.jsonl",
        "tagged-statement",
        &["--as-of", AS_OF, "--channels", "pdf"],
    );
    let docs = entries(&manifest(&out));
    let pdf = out.join(
        docs[&("C-01043".into(), "pdf".into())]["path"]
            .as_str()
            .unwrap(),
    );
    let tree = struct_text(&pdf);
    let (address, h1) = (
        line_of(&tree, &["Antonín Dvořák"]),
        line_of(&tree, &["H1", "Your annual statement"]),
    );
    let table = line_of(&tree, &["Table (block)"]);
    let header = line_of(&tree, &["TH <"]);
    let first_row = line_of(&tree, &["TD:"]);
    assert!(
        address < h1 && h1 < table && table < header && header < first_row,
        "{tree}"
    );
    assert_eq!(pdf_lang(&pdf), "en-GB");
}

/// Runs the accessibility check (`tests/a11y/check.js`: axe-core with the
/// WCAG 2.1 A and AA rules in Debian's headless Chromium, and the sideways
/// scroll at phone width and 200% zoom) on HTML files; with `shots`, it
/// saves screenshots there. Fails, saying what to install, when the browser
/// or the npm packages are missing: the check is never skipped.
fn axe(shots: Option<&Path>, files: &[PathBuf]) -> Vec<serde_json::Value> {
    let dir = root().join("tests/a11y");
    for package in ["axe-core", "puppeteer-core"] {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "{package} is not installed: run `npm ci --prefix tests/a11y` (.ci/run does)"
        );
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Debian's chromium is not installed: `apt-get install chromium` (.ci/run does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("check.js"));
    if let Some(shots) = shots {
        cmd.arg("--shots").arg(shots);
    }
    let out = cmd.args(files).output().expect("node is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), files.len());
    results
}

/// The files of a folder with an extension, sorted.
fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

#[test]
fn web_letters_and_emails_pass_axe_in_chromium() {
    let welcome = render_ok(
        "welcome-letter@4",
        "fixtures/customers.csv",
        "web-welcome",
        &["--as-of", AS_OF],
    );
    let statements = render_ok(
        "annual-statement@2",
        "fixtures/statements.jsonl",
        "web-statements",
        &["--as-of", AS_OF],
    );
    let mut pages = Vec::new();
    for out in [&welcome, &statements] {
        let m = manifest(out);
        let web: Vec<&serde_json::Value> = m["documents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["channel"] == "web")
            .collect();
        let records = m["documents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["channel"] == "pdf")
            .count();
        assert_eq!(web.len(), records, "every record has a web letter");
        for doc in web {
            assert_eq!(doc["status"], "rendered", "{doc}");
            let file = out.join(doc["path"].as_str().unwrap());
            assert_eq!(sha256_file(&file), doc["sha256"].as_str().unwrap());
            let html = std::fs::read_to_string(&file).unwrap();
            let lang = doc["locale"].as_str().unwrap();
            assert!(
                html.contains(&format!("<html lang=\"{lang}\">")),
                "{}",
                file.display()
            );
            assert_eq!(
                html.matches("<h1>").count(),
                1,
                "one h1: {}",
                file.display()
            );
            assert!(!html.contains("<script"), "no script");
            assert!(
                !html.contains("src=\"http") && !html.contains("href=\"http"),
                "self-contained"
            );
            pages.push(file);
        }
        let res = letterpress(&["verify", out.to_str().unwrap()]);
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    }
    let statement = std::fs::read_to_string(statements.join("web/C-01099.html")).unwrap();
    assert!(
        statement.contains("<thead>") && statement.matches("<th>").count() >= 7,
        "data tables have header cells"
    );
    let web_count = pages.len();
    pages.extend(files_in(&welcome.join("email"), "html"));
    assert!(pages.len() > web_count + 20, "the emails are checked too");
    for r in axe(None, &pages) {
        assert_eq!(r["violations"], serde_json::json!([]), "{}", r["file"]);
        assert_eq!(
            r["requests"],
            serde_json::json!([]),
            "{}: loads nothing",
            r["file"]
        );
        if r["file"].as_str().unwrap().contains("/web/") {
            assert_eq!(
                r["overflow"]["phone"], 0,
                "{}: no sideways scroll on a phone",
                r["file"]
            );
            assert_eq!(r["overflow"]["zoom200"], 0, "{}: none at 200%", r["file"]);
        }
    }
    // Screenshots at desktop and phone size, for a person to look at.
    let shots = welcome.join("screenshots");
    axe(
        Some(&shots),
        &[
            welcome.join("web/C-01022.html"),
            statements.join("web/C-01239.html"),
        ],
    );
    assert!(shots.join("C-01239-phone.png").is_file());
}

#[test]
fn an_inaccessible_web_template_is_caught() {
    // Caught on the layout's sample before anything is rendered.
    let (out, res) = run_edited(
        "web-broken",
        "lib/letterhead.typ",
        |t| {
            t.replace(
                "image(\"/assets/logo.svg\", width: 48mm, alt: \"Northwind Bank\")\n  par(recipient)",
                "image(\"/assets/logo.svg\", width: 48mm)\n  par(recipient)",
            )
            .replace(
                "terms(..info.chunks(2).map(((term, value)) => terms.item(term, value)))",
                "table(columns: 2, ..info)",
            )
        },
        &[by_post("W-1", serde_json::json!({}))],
        "pdf,web",
    );
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    let said = String::from_utf8_lossy(&res.stderr);
    assert!(
        said.contains("web letter: the web letter is not accessible: lib/letterhead.typ:")
            && said.contains("an image without alt text"),
        "{said}"
    );
    assert!(said.contains("table without header cells"), "{said}");
    assert!(!out.join("manifest.json").exists());

    // The browser check itself fails a page with an image without alt text
    // (here a good web letter with its alt text taken out).
    let good = render_ok(
        "welcome-letter@4",
        "fixtures/customers.csv",
        "web-alt",
        &["--as-of", AS_OF, "--channels", "web"],
    );
    let page = good.join("web/C-01001.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let stripped = good.join("stripped.html");
    std::fs::write(&stripped, html.replace(" alt=\"Northwind Bank\"", "")).unwrap();
    let results = axe(None, &[page, stripped]);
    assert_eq!(results[0]["violations"], serde_json::json!([]));
    assert_eq!(
        results[1]["violations"][0]["id"], "image-alt",
        "{}",
        results[1]
    );
}

#[test]
fn a_web_letter_leaves_nothing_out() {
    // A template that places content on the page without a web form of it:
    // Typst's HTML export would drop it, so the web letter fails naming it.
    // Only for some data: the layout's sample passes, the record fails.
    let (out, docs) = run_edited_failing(
        "web-place",
        "letter.typ",
        |t| format!("{t}\n#if r.last_name == \"Lee\" [#place(bottom + right)[Reference 42]]\n"),
        &[
            by_post("W-1", serde_json::json!({})),
            by_post("W-2", serde_json::json!({"last_name": "Okafor"})),
        ],
        "pdf,web",
    );
    assert_eq!(docs[&("W-2".into(), "web".into())]["status"], "rendered");
    let why = docs[&("W-1".into(), "web".into())]["error"]
        .as_str()
        .unwrap();
    assert!(
        why.contains("letter.typ:") && why.contains("place was ignored"),
        "{why}"
    );
    assert!(pdftotext(&out.join("pdf/W-1.pdf")).contains("Reference 42"));
}

#[test]
fn proof_report_and_validate_know_the_formats() {
    let dir = scratch("formats-elsewhere");
    // The proof picks a large-print letter and shows the web letters.
    let pdf = dir.join("proof.pdf");
    let args = [
        "proof",
        "--layout",
        "welcome-letter@4",
        "--data",
        "fixtures/customers.csv",
    ];
    let mut args = args.to_vec();
    args.extend(["--out", pdf.to_str().unwrap(), "--as-of", AS_OF]);
    let res = letterpress(&args);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    assert!(squash(&pdftotext(&pdf)).contains("format:large-print"));
    let web = std::fs::read_to_string(dir.join("proof-web.html")).unwrap();
    assert!(web.contains("Web letter proof: welcome-letter@4"));
    assert!(web.matches("<iframe").count() > 10, "a web letter per pick");
    assert!(web.contains("format: large-print"));

    // The report counts letters by format.
    let out = render_ok(
        "welcome-letter@4",
        "fixtures/customers.csv",
        "formats-report",
        &["--as-of", AS_OF, "--channels", "pdf,web"],
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Letters by format"), "{report}");
    assert!(report.contains("<td>large-print</td><td class=\"n\">3</td>"));

    // validate fails a format the layout does not make, before any rendering.
    let data = dir.join("data.jsonl");
    write_jsonl(
        &data,
        &[customer(
            "B-1",
            serde_json::json!({"accessibility": "Braille"}),
        )],
    );
    let res = letterpress(&[
        "validate",
        "--layout",
        "welcome-letter@4",
        "--data",
        data.to_str().unwrap(),
        "--as-of",
        AS_OF,
    ]);
    assert_eq!(res.status.code(), Some(1), "{}", describe(&res));
    assert!(
        describe(&res).contains("field `accessibility`: `Braille` is not a letter format"),
        "{}",
        describe(&res)
    );
}

/// `annual-statement@3` only draws its table's rules more cheaply than
/// version 2 (one stroke and a line under the header instead of a
/// function per cell): every page of every bundled statement, standard
/// and large print, is the same picture, pixel for pixel.
#[test]
fn statement_version_3_draws_the_same_pages_as_version_2() {
    let dir = scratch("statement-v3-pages");
    let data = root().join("fixtures/statements.jsonl");
    // pdftoppm numbers a document's pages with equal widths (-01 .. -12),
    // so the names sort in page order.
    let sorted_files = |folder: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };
    // Every page of every statement of a version, as pictures, and the most
    // pages a statement has.
    let pictures = |version: &str| -> (Vec<Vec<u8>>, usize) {
        let out = dir.join(version);
        let res = run_layout(
            &format!("annual-statement@{version}"),
            &data,
            &out,
            &["--as-of", "2026-12-04", "--channels", "pdf"],
        );
        assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
        let mut pages = Vec::new();
        let mut longest = 0;
        for (i, pdf) in sorted_files(&out.join("pdf")).iter().enumerate() {
            let shots = dir.join(format!("v{version}-{i}"));
            std::fs::create_dir_all(&shots).unwrap();
            let res = Command::new("pdftoppm")
                .args(["-r", "72", pdf.to_str().unwrap()])
                .arg(shots.join("page"))
                .output()
                .expect("pdftoppm (poppler-utils) is installed");
            assert!(res.status.success(), "pdftoppm {}", pdf.display());
            let shots = sorted_files(&shots);
            longest = longest.max(shots.len());
            pages.extend(shots.iter().map(|shot| std::fs::read(shot).unwrap()));
        }
        (pages, longest)
    };
    let (v2, longest) = pictures("2");
    let (v3, _) = pictures("3");
    let large = std::fs::read_to_string(&data)
        .unwrap()
        .matches("\"large-print\"")
        .count();
    assert!(
        longest >= 2 && large >= 1,
        "the fixtures have a statement of {longest} pages and {large} in large print"
    );
    assert_eq!(v2.len(), v3.len(), "the same number of pages");
    let differ: Vec<usize> = (0..v2.len()).filter(|&i| v2[i] != v3[i]).collect();
    assert!(
        differ.is_empty(),
        "pages {differ:?} (of {}) differ between versions 2 and 3",
        v2.len()
    );
}

/// poppler reads every sample letter without a message: plain, PDF/A-2b
/// and PDF/UA-1 (it took an explicit `/Suspects false` for a wrong type
/// and printed "Syntax Error" for every letter), and the catalog still
/// marks the letter as tagged.
#[test]
fn poppler_reads_every_letter_without_a_syntax_error() {
    let cases = [
        ("welcome-letter@4", "fixtures/customers.csv", AS_OF),
        (
            "annual-statement@3",
            "fixtures/statements.jsonl",
            "2026-12-04",
        ),
        ("payment-reminder@4", "fixtures/reminders.csv", AS_OF),
    ];
    for (layout, data, as_of) in cases {
        for standard in [None, Some("a-2b"), Some("ua-1")] {
            let name = format!(
                "poppler-{}-{}",
                layout.replace('@', "-"),
                standard.unwrap_or("plain")
            );
            let mut extra = vec!["--as-of", as_of, "--channels", "pdf"];
            if let Some(s) = standard {
                extra.extend(["--pdf-standard", s]);
            }
            let out = render_ok(layout, data, &name, &extra);
            let pdfs: Vec<_> = std::fs::read_dir(out.join("pdf"))
                .unwrap()
                .take(5)
                .collect();
            assert!(!pdfs.is_empty());
            for entry in pdfs {
                let pdf = entry.unwrap().path();
                let info = Command::new("pdfinfo").arg(&pdf).output().unwrap();
                let text = Command::new("pdftotext")
                    .arg(&pdf)
                    .arg("/dev/null")
                    .output()
                    .unwrap();
                for (tool, res) in [("pdfinfo", info), ("pdftotext", text)] {
                    let err = String::from_utf8_lossy(&res.stderr);
                    assert!(
                        res.status.success() && err.is_empty(),
                        "{tool} {}: {err}",
                        pdf.display()
                    );
                }
                let json = Command::new("qpdf")
                    .args(["--json", "--json-key=qpdf"])
                    .arg(&pdf)
                    .output()
                    .unwrap();
                let json = String::from_utf8_lossy(&json.stdout);
                assert!(json.contains("\"/Marked\": true"), "{}", pdf.display());
                assert!(!json.contains("/Suspects"), "{}", pdf.display());
            }
        }
    }
}

/// The text of the envelope window of a letter's first page (DIN 5008
/// form B: 20 mm from the left, 45 mm from the top, 85 × 45 mm), a line
/// each, empty lines left out.
fn window_lines(pdf: &Path) -> Vec<String> {
    let out = Command::new("pdftotext")
        .args([
            "-x", "57", "-y", "128", "-W", "241", "-H", "128", "-r", "72", "-f", "1", "-l", "1",
        ])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// For each row of a large-print statement's table on `page` after the
/// first, the room in points between the last line of the row above and
/// the row's first line (word boxes by pdftotext -bbox; rows start with a
/// date).
fn row_gaps(pdf: &Path, page: u32) -> Vec<f64> {
    let p = page.to_string();
    let out = Command::new("pdftotext")
        .args(["-bbox", "-f", &p, "-l", &p])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    let html = String::from_utf8_lossy(&out.stdout).into_owned();
    // Lines of the left column: top, bottom, text.
    let mut lines: std::collections::BTreeMap<i64, (f64, f64, String)> = Default::default();
    for word in html.split("<word ").skip(1) {
        let attr = |name: &str| -> f64 {
            let at = word.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            word[at..].split('"').next().unwrap().parse().unwrap()
        };
        let text = word.split('>').nth(1).unwrap().split('<').next().unwrap();
        if attr("xMin") < 200.0 {
            let e = lines
                .entry((attr("yMin") * 10.0).round() as i64)
                .or_insert((attr("yMin"), attr("yMax"), String::new()));
            e.2.push_str(text);
            e.2.push(' ');
        }
    }
    let lines: Vec<&(f64, f64, String)> = lines.values().collect();
    let months = [
        "Jan ", "Feb ", "Mar ", "Apr ", "May ", "Jun ", "Jul ", "Aug ", "Sep ", "Oct ", "Nov ",
        "Dec ",
    ];
    let starts_row = |t: &str| {
        t.len() > 3 && t.as_bytes()[0].is_ascii_digit() && months.iter().any(|m| t.contains(m))
    };
    (1..lines.len())
        .filter(|&i| starts_row(&lines[i].2) && !starts_row(&lines[i - 1].2))
        .map(|i| lines[i].0 - lines[i - 1].1)
        .collect()
}

/// Version 4 of the statement writes the address as the destination
/// country does (in the UK the post town and the postcode each on a line)
/// and gives the rows of its large-print table room around their text;
/// version 3 put "SW19 4HE London" on one line and let the rows touch.
#[test]
fn the_statement_addresses_by_country_and_its_large_print_rows_have_room() {
    let v4 = render_ok(
        "annual-statement@4",
        "fixtures/statements.jsonl",
        "statement-v4",
        &["--as-of", "2026-12-06", "--channels", "pdf"],
    );
    let v3 = render_ok(
        "annual-statement@3",
        "fixtures/statements.jsonl",
        "statement-v3",
        &["--as-of", "2026-12-06", "--channels", "pdf"],
    );
    let uk = ["Mr James Whitfield", "14 Elm Grove", "LONDON", "SW19 4HE"];
    let lines = window_lines(&v4.join("pdf/C-01001.pdf"));
    assert_eq!(lines[1..], uk, "{lines:?}");
    let old = window_lines(&v3.join("pdf/C-01001.pdf"));
    assert_ne!(old[1..], uk, "version 3 wrote it otherwise: {old:?}");
    // The same rules as the welcome letter's, for every statement.
    let welcome = render_ok(
        "welcome-letter@4",
        "fixtures/customers.csv",
        "statement-v4-welcome",
        &["--as-of", AS_OF, "--channels", "pdf"],
    );
    let w = window_lines(&welcome.join("pdf/C-01001.pdf"));
    assert_eq!(w[1..], uk, "{w:?}");
    // Large print: at least 5 pt between the text of two rows (the inset
    // above and below); version 3's word boxes overlapped.
    for id in ["C-01043", "C-01239"] {
        let gaps = row_gaps(&v4.join(format!("pdf/{id}.pdf")), 2);
        assert!(gaps.len() >= 5, "{id}: {gaps:?}");
        assert!(gaps.iter().all(|g| *g >= 5.0), "{id}: {gaps:?}");
        let old = row_gaps(&v3.join(format!("pdf/{id}.pdf")), 2);
        assert!(old.iter().any(|g| *g < 1.0), "{id} in version 3: {old:?}");
    }
}
