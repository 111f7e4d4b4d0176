//! PDF/VT-1 on PDF/X-4 print files (`run --print --print-shop FILE`).
//!
//! No open PDF/X or PDF/VT validator exists, so the requirements
//! letterpress meets are written here as a checker over `qpdf --json`
//! (each rule named), and every rule has a negative control: the good file
//! changed (with lopdf) to break exactly that rule fails exactly it.
//!
//! The test profile is made here with Argyll's `colprof` from the FOGRA39
//! measurement data of Debian's `icc-profiles-free` (as colord makes its
//! CC0 profiles): the test says so and fails when they are missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lopdf::{dictionary, Document, Object, Stream};
use serde_json::Value;

use crate::common::*;

/// A CMYK output profile (class `prtr`) made once for the tests.
fn fogra39() -> PathBuf {
    static PROFILE: OnceLock<PathBuf> = OnceLock::new();
    PROFILE
        .get_or_init(|| {
            let dir = scratch("pdfx-profile");
            let ti3 = Path::new("/usr/share/color/icc/FOGRA39L.ti3");
            assert!(
                ti3.exists(),
                "this test makes its ICC profile from {} (Debian icc-profiles-free): install it",
                ti3.display()
            );
            std::fs::copy(ti3, dir.join("FOGRA39L.ti3")).unwrap();
            let out = Command::new("colprof")
                .current_dir(&dir)
                .args([
                    "-v0",
                    "-ql",
                    "-D",
                    "FOGRA39L coated (test profile)",
                    "FOGRA39L",
                ])
                .output()
                .expect("colprof (Debian argyll) makes this test's ICC profile: install it");
            assert!(out.status.success(), "{}", describe(&out));
            dir.join("FOGRA39L.icc")
        })
        .clone()
}

/// A print shop file in `dir` with the FOGRA39 profile beside it.
fn shop(dir: &Path, profile: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(profile, dir.join("profile.icc")).unwrap();
    let file = dir.join("shop.yaml");
    std::fs::write(
        &file,
        format!(
            "name: Test print shop\noutput_intent:\n  profile: profile.icc\n  condition: FOGRA39\n  info: Coated FOGRA39 (ISO 12647-2:2004)\n{extra}"
        ),
    )
    .unwrap();
    file
}

/// The sample welcome letters printed for the test print shop.
fn printed_for_shop(name: &str, extra: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let file = shop(&dir.join("shop"), &fogra39(), extra);
    let out = dir.join("run");
    let res = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &out,
        &[
            "--print",
            "--print-shop",
            file.to_str().unwrap(),
            "--channels",
            "pdf",
        ],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    (dir, out)
}

/// A PDF as `qpdf --json` shows it, streams decoded into files.
struct Pdf {
    header: Vec<u8>,
    objects: serde_json::Map<String, Value>,
}

impl Pdf {
    fn read(file: &Path, dir: &Path) -> Pdf {
        let streams = dir.join(format!(
            "streams-{}",
            file.file_stem().unwrap().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&streams);
        std::fs::create_dir_all(&streams).unwrap();
        let out = Command::new("qpdf")
            .args(["--json=2", "--json-key=qpdf", "--json-stream-data=file"])
            .arg(format!(
                "--json-stream-prefix={}",
                streams.join("s").display()
            ))
            .args(["--decode-level=generalized"])
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        let bytes = std::fs::read(file).unwrap();
        Pdf {
            header: bytes[..bytes.len().min(16)].to_vec(),
            objects: j["qpdf"][1].as_object().unwrap().clone(),
        }
    }

    /// The value of an object, following a reference (`"12 0 R"`).
    fn get<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.as_str().filter(|s| s.ends_with(" R")) {
            Some(r) => {
                let o = &self.objects[&format!("obj:{r}")];
                o.get("value").unwrap_or(o)
            }
            None => v,
        }
    }

    /// A stream's dictionary and decoded data.
    fn stream<'a>(&'a self, v: &'a Value) -> Option<(&'a Value, Vec<u8>)> {
        let s = self.get(v).get("stream")?;
        let data = std::fs::read(s["datafile"].as_str()?).ok()?;
        Some((&s["dict"], data))
    }

    fn catalog(&self) -> &Value {
        self.get(&self.objects["trailer"]["value"]["/Root"])
    }

    fn pages(&self) -> Vec<&Value> {
        let kids = self.get(&self.catalog()["/Pages"])["/Kids"].as_array();
        kids.into_iter().flatten().map(|k| self.get(k)).collect()
    }

    /// Every object's value or stream dictionary.
    fn values(&self) -> impl Iterator<Item = &Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.starts_with("obj:"))
            .map(|(_, o)| {
                o.get("value")
                    .or_else(|| o.get("stream").map(|s| &s["dict"]))
                    .unwrap_or(o)
            })
    }
}

/// Every name a JSON value holds (`"/DeviceRGB"`), nested.
fn names_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) if s.starts_with('/') => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| names_in(x, out)),
        Value::Object(o) => o.values().for_each(|x| names_in(x, out)),
        _ => {}
    }
}

/// The operators of a content stream (strings, names and numbers aside).
fn operators(data: &[u8]) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        match c {
            b'(' => {
                let mut depth = 0;
                while i < data.len() {
                    match data[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            b'<' if data.get(i + 1) == Some(&b'<') => i += 2,
            b'<' => {
                while i < data.len() && data[i] != b'>' {
                    i += 1;
                }
                i += 1;
            }
            b'%' => {
                while i < data.len() && data[i] != b'\n' {
                    i += 1;
                }
            }
            _ if c.is_ascii_alphabetic() || c == b'\'' || c == b'"' || c == b'*' => {
                let start = i;
                while i < data.len()
                    && (data[i].is_ascii_alphanumeric() || b"'\"*".contains(&data[i]))
                {
                    i += 1;
                }
                ops.insert(String::from_utf8_lossy(&data[start..i]).into_owned());
            }
            b'/' => {
                i += 1;
                while i < data.len() && !b" \t\r\n/[]<>(){}%".contains(&data[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    ops
}

/// The text of an XMP element (`<pdf:Trapped>False</pdf:Trapped>`).
fn xmp_value<'a>(xmp: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xmp.find(&open)? + open.len();
    let end = xmp[start..].find(&format!("</{tag}>"))? + start;
    Some(xmp[start..end].trim())
}

/// What keeps the file from being PDF/VT-1 on PDF/X-4, as `rule: why`.
fn problems(file: &Path, dir: &Path) -> Vec<String> {
    let pdf = Pdf::read(file, dir);
    let mut p = Vec::new();
    let mut fail = |rule: &str, why: String| p.push(format!("{rule}: {why}"));
    if !pdf.header.starts_with(b"%PDF-1.6") {
        fail(
            "header",
            String::from_utf8_lossy(&pdf.header[..8]).into_owned(),
        );
    }
    let trailer = &pdf.objects["trailer"]["value"];
    match trailer["/ID"].as_array() {
        Some(id) if id.len() == 2 && id.iter().all(|s| s.as_str().is_some_and(|s| s.len() > 2)) => {
        }
        _ => fail("id", "the trailer has no /ID of two strings".into()),
    }
    if trailer.get("/Encrypt").is_some() {
        fail("encrypt", "the file is encrypted".into());
    }
    let catalog = pdf.catalog();
    let components = output_intent(&pdf, catalog, &mut fail);
    xmp(&pdf, catalog, &mut fail);
    let info = pdf.get(&trailer["/Info"]);
    if !matches!(info["/Trapped"].as_str(), Some("/True" | "/False")) {
        fail("info", format!("Trapped is {}", info["/Trapped"]));
    }
    if info["/GTS_PDFXVersion"] != "u:PDF/X-4" || info["/Title"].is_null() {
        fail("info", "no GTS_PDFXVersion PDF/X-4 or no Title".into());
    }
    for key in ["/OpenAction", "/AA"] {
        if catalog.get(key).is_some() {
            fail("actions", format!("the catalog has {key}"));
        }
    }
    if catalog.get("/Names").is_some_and(|n| {
        let n = pdf.get(n);
        n.get("/JavaScript").is_some() || n.get("/EmbeddedFiles").is_some()
    }) {
        fail("actions", "JavaScript or embedded files".into());
    }
    if catalog.get("/DPartRoot").is_none() {
        fail("dparts", "no DPartRoot in the catalog".into());
    }
    pages(&pdf, components, &mut fail);
    fonts(&pdf, &mut fail);
    p
}

/// The output intent and its profile; returns the profile's components.
fn output_intent(pdf: &Pdf, catalog: &Value, fail: &mut impl FnMut(&str, String)) -> usize {
    let intents: Vec<&Value> = catalog["/OutputIntents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| pdf.get(i))
        .filter(|i| i["/S"] == "/GTS_PDFX")
        .collect();
    let [intent] = intents.as_slice() else {
        fail(
            "output-intent",
            format!("{} GTS_PDFX output intents, not one", intents.len()),
        );
        return 0;
    };
    for key in ["/OutputConditionIdentifier", "/RegistryName", "/Info"] {
        if intent[key].as_str().is_none_or(|s| s.len() <= 2) {
            fail("output-intent", format!("no {key}"));
        }
    }
    let Some((dict, icc)) = pdf.stream(&intent["/DestOutputProfile"]) else {
        fail("profile", "no embedded DestOutputProfile".into());
        return 0;
    };
    if icc.len() < 40 || &icc[12..16] != b"prtr" || &icc[36..40] != b"acsp" {
        let class = String::from_utf8_lossy(icc.get(12..16).unwrap_or_default()).into_owned();
        fail(
            "profile",
            format!("not an output (prtr) ICC profile: class {class:?}"),
        );
        return 0;
    }
    let n = match &icc[16..20] {
        b"CMYK" => 4,
        b"RGB " => 3,
        b"GRAY" => 1,
        other => {
            fail(
                "profile",
                format!("colour space {:?}", String::from_utf8_lossy(other)),
            );
            0
        }
    };
    if dict["/N"].as_u64() != Some(n as u64) {
        fail(
            "profile",
            format!("/N {} for a {n}-component profile", dict["/N"]),
        );
    }
    n
}

/// The XMP identification.
fn xmp(pdf: &Pdf, catalog: &Value, fail: &mut impl FnMut(&str, String)) {
    let Some((_, data)) = pdf.stream(&catalog["/Metadata"]) else {
        fail("xmp", "no metadata stream".into());
        return;
    };
    let x = String::from_utf8_lossy(&data);
    let want = [
        ("pdfxid:GTS_PDFXVersion", Some("PDF/X-4")),
        ("pdfvtid:GTS_PDFVTVersion", Some("PDF/VT-1")),
        ("pdf:Trapped", None),
        ("xmpMM:DocumentID", None),
        ("xmpMM:InstanceID", None),
        ("xmpMM:VersionID", None),
        ("xmpMM:RenditionClass", None),
        ("xmp:ModifyDate", None),
        ("dc:title", None),
    ];
    for (tag, value) in want {
        match (xmp_value(&x, tag), value) {
            (None, _) => fail("xmp", format!("no {tag}")),
            (Some(v), Some(want)) if v != want => fail("xmp", format!("{tag} is {v}")),
            _ => {}
        }
    }
    if xmp_value(&x, "pdfvtid:GTS_PDFVTModDate") != xmp_value(&x, "xmp:ModifyDate") {
        fail("xmp", "GTS_PDFVTModDate is not xmp:ModifyDate".into());
    }
    for ns in [
        "http://www.npes.org/pdfx/ns/id/",
        "http://www.npes.org/pdfvt/ns/id/",
    ] {
        if !x.contains(ns) {
            fail("xmp", format!("namespace {ns} not declared"));
        }
    }
}

/// A box as four numbers.
fn rect(v: &Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    let n: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
    n.try_into().ok()
}

fn inside(inner: [f64; 4], outer: [f64; 4]) -> bool {
    let e = 0.01;
    inner[0] >= outer[0] - e
        && inner[1] >= outer[1] - e
        && inner[2] <= outer[2] + e
        && inner[3] <= outer[3] + e
}

/// Every page: its boxes, no annotations or actions, its document part,
/// and device colour only as the intent allows (in resources and in its
/// content's operators).
fn pages(pdf: &Pdf, components: usize, fail: &mut impl FnMut(&str, String)) {
    let (bad_names, bad_ops): (&[&str], &[&str]) = match components {
        4 => (&["/DeviceRGB"], &["rg", "RG"]),
        3 => (&["/DeviceCMYK"], &["k", "K"]),
        _ => (&["/DeviceRGB", "/DeviceCMYK"], &["rg", "RG", "k", "K"]),
    };
    let mut all = BTreeSet::new();
    for v in pdf.values() {
        names_in(v, &mut all);
    }
    for n in bad_names {
        if all.contains(*n) {
            fail(
                "colour",
                format!("{n} with a {components}-component intent"),
            );
        }
    }
    for (i, page) in pdf.pages().into_iter().enumerate() {
        let no = i + 1;
        let media = rect(&page["/MediaBox"]);
        let trim = rect(&page["/TrimBox"]);
        let bleed = rect(&page["/BleedBox"]).or(media);
        match (media, trim, bleed) {
            (Some(m), Some(t), Some(b))
                if page.get("/ArtBox").is_none() && inside(t, b) && inside(b, m) => {}
            _ => fail(
                "trim",
                format!("page {no}: TrimBox missing or not inside BleedBox and MediaBox"),
            ),
        }
        if page.get("/Annots").is_some() || page.get("/AA").is_some() {
            fail("annots", format!("page {no} has annotations or actions"));
        }
        if page.get("/DPart").is_none() {
            fail("dparts", format!("page {no} names no DPart"));
        }
        let contents = match &page["/Contents"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for c in contents {
            if let Some((_, data)) = pdf.stream(&c) {
                let ops = operators(&data);
                if let Some(op) = bad_ops.iter().find(|o| ops.contains(**o)) {
                    fail(
                        "colour",
                        format!("page {no} paints with the device operator {op}"),
                    );
                }
            }
        }
    }
}

/// Every font embedded.
fn fonts(pdf: &Pdf, fail: &mut impl FnMut(&str, String)) {
    for v in pdf.values() {
        if v["/Type"] == "/FontDescriptor"
            && !["/FontFile", "/FontFile2", "/FontFile3"]
                .iter()
                .any(|k| v.get(*k).is_some())
        {
            fail("fonts", format!("font {} is not embedded", v["/FontName"]));
        }
    }
}

/// The rules a set of problems names.
fn rules(problems: &[String]) -> BTreeSet<String> {
    problems
        .iter()
        .map(|p| p.split(':').next().unwrap().to_owned())
        .collect()
}

#[test]
fn print_files_for_a_print_shop_are_pdf_vt_1_on_pdf_x_4() {
    let (dir, out) = printed_for_shop(
        "pdfx",
        "bleed: 3\nsheet_weight: 6\nenvelopes:\n  - {name: \"SHOP C5\", max_sheets: 8, weight: 5}\n",
    );
    let file = out.join("print/print-001.pdf");
    assert!(qpdf_check(&file).status.success());
    let found = problems(&file, &dir);
    assert!(found.is_empty(), "{found:#?}");
    // poppler reads the identification too.
    let info = pdfinfo(&file);
    assert!(info.contains("PDF subtype:    PDF/VT-1"), "{info}");
    // The manifest names the shop and the profile the files were made for.
    let m = manifest(&out);
    let shop = &m["print"]["print_shop"];
    assert_eq!(shop["condition"], "FOGRA39");
    assert_eq!(shop["profile_colour_space"], "CMYK");
    assert_eq!(shop["profile_sha256"], sha256_file(&fogra39()));
    assert_eq!(
        shop["conformance"],
        serde_json::json!(["PDF/X-4", "PDF/VT-1"])
    );
    // The shop's envelope and sheet weight replace the layout's (DL).
    let rows = csv_rows(&out.join("print/job-ticket.csv"));
    let first = &rows[0];
    assert_eq!(first["envelope"], "SHOP C5", "{first:?}");
    let sheets: f64 = first["sheets"].parse().unwrap();
    assert_eq!(
        first["weight_g"],
        format!("{:.1}", sheets * 6.0 + 5.0),
        "{first:?}"
    );
    // The profile is kept with the run (reprints embed it) and verified.
    assert_eq!(shop["kept"]["sha256"], sha256_file(&fogra39()));
    let res = letterpress(&["verify", out.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // 3 mm bleed: the trim box is the A4 page, the media and bleed boxes
    // 8.5 pt larger on every side.
    let boxes = Command::new("pdfinfo")
        .args(["-box", "-f", "1", "-l", "1"])
        .arg(&file)
        .output()
        .unwrap();
    let boxes = String::from_utf8_lossy(&boxes.stdout);
    let numbers = |name: &str| -> Vec<String> {
        let line = boxes.lines().find(|l| l.contains(name)).unwrap();
        line.split_whitespace()
            .rev()
            .take(4)
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        numbers("TrimBox:"),
        ["841.89", "595.28", "0.00", "0.00"],
        "{boxes}"
    );
    assert_eq!(
        numbers("BleedBox:"),
        ["850.39", "603.78", "-8.50", "-8.50"],
        "{boxes}"
    );
    assert_eq!(numbers("MediaBox:"), numbers("BleedBox:"), "{boxes}");
    // Without the print shop's file: no claim, and the checker says so.
    let plain = dir.join("plain");
    let res = run_layout(
        "welcome-letter",
        &root().join("fixtures/customers.csv"),
        &plain,
        &["--print", "--channels", "pdf"],
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let plain_problems = problems(&plain.join("print/print-001.pdf"), &dir);
    let broken = rules(&plain_problems);
    for rule in ["header", "id", "output-intent", "xmp", "info", "trim"] {
        assert!(broken.contains(rule), "{rule} in {plain_problems:#?}");
    }
    assert!(!pdfinfo(&plain.join("print/print-001.pdf")).contains("PDF/VT"));
    assert_eq!(
        csv_rows(&plain.join("print/job-ticket.csv"))[0]["envelope"],
        "DL"
    );
}

/// The good file changed by `edit` and saved with lopdf.
fn broken(file: &Path, dir: &Path, name: &str, edit: impl FnOnce(&mut Document)) -> PathBuf {
    let mut doc = Document::load(file).unwrap();
    edit(&mut doc);
    let path = dir.join(format!("{name}.pdf"));
    doc.save(&path).unwrap();
    path
}

fn catalog_mut(doc: &mut Document) -> &mut lopdf::Dictionary {
    let id = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    doc.get_dictionary_mut(id).unwrap()
}

fn page(doc: &Document, n: u32) -> lopdf::ObjectId {
    doc.get_pages()[&n]
}

#[test]
fn each_pdf_x_rule_fails_a_file_that_breaks_exactly_it() {
    let (dir, out) = printed_for_shop("pdfx-controls", "");
    let good = out.join("print/print-001.pdf");
    // lopdf writes the file again: still no problem.
    let same = broken(&good, &dir, "same", |_| {});
    assert!(
        problems(&same, &dir).is_empty(),
        "{:#?}",
        problems(&same, &dir)
    );
    let display = std::fs::read("/usr/share/color/icc/ghostscript/srgb.icc")
        .or_else(|_| std::fs::read("/usr/share/color/icc/sRGB.icc"))
        .expect("a display (mntr) ICC profile from ghostscript or icc-profiles-free");
    for (rule, edit) in breakers(display) {
        let file = broken(&good, &dir, rule, edit);
        let found = problems(&file, &dir);
        assert_eq!(
            rules(&found),
            BTreeSet::from([rule.to_owned()]),
            "breaking {rule}: {found:#?}"
        );
    }
}

/// `profile` (bytes) as the output profile of a print shop in `dir`.
fn shop_with(dir: &Path, profile: &[u8], path: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("p.icc"), profile).unwrap();
    let file = dir.join("shop.yaml");
    let yaml = format!("output_intent:\n  profile: {path}\n  condition: TEST\n  info: Test\n");
    std::fs::write(&file, yaml).unwrap();
    file
}

fn print_with(layouts: Option<&Path>, shop: &Path, out: &Path) -> std::process::Output {
    let data = root().join("fixtures/customers.csv");
    let args = [
        "--print",
        "--print-shop",
        shop.to_str().unwrap(),
        "--channels",
        "pdf",
    ];
    match layouts {
        Some(l) => run_layout_with(l, "welcome-letter", &data, out, &args),
        None => run_layout("welcome-letter", &data, out, &args),
    }
}

#[test]
fn a_print_shop_file_without_an_output_profile_is_refused_before_anything_renders() {
    let dir = scratch("pdfx-refused");
    let display = std::fs::read("/usr/share/color/icc/ghostscript/srgb.icc")
        .or_else(|_| std::fs::read("/usr/share/color/icc/sRGB.icc"))
        .expect("a display (mntr) ICC profile from ghostscript or icc-profiles-free");
    let cases = [
        ("display", display.clone(), "p.icc", "not an output profile"),
        (
            "not-icc",
            b"not a profile".to_vec(),
            "p.icc",
            "not an ICC profile",
        ),
        (
            "outside",
            std::fs::read(fogra39()).unwrap(),
            "../p.icc",
            "inside the print shop file's folder",
        ),
    ];
    for (name, bytes, path, says) in cases {
        let shop = shop_with(&dir.join(name).join("shop"), &bytes, path);
        // The profile one folder up exists, so only containment refuses it.
        std::fs::write(dir.join(name).join("p.icc"), &bytes).unwrap();
        let out = dir.join(name).join("run");
        let res = print_with(None, &shop, &out);
        assert_eq!(res.status.code(), Some(2), "{name}: {}", describe(&res));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(says), "{name}: {err}");
        assert!(!out.join("pdf").exists(), "{name}: nothing rendered");
    }
    // Control: the same shop file with the output profile runs.
    let shop = shop_with(
        &dir.join("good"),
        &std::fs::read(fogra39()).unwrap(),
        "p.icc",
    );
    let res = print_with(None, &shop, &dir.join("good-run"));
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    // --print-shop says what the print files are for: it needs --print.
    let res = letterpress(&[
        "run",
        "--layout",
        "welcome-letter",
        "--data",
        root().join("fixtures/customers.csv").to_str().unwrap(),
        "--out",
        dir.join("no-print").to_str().unwrap(),
        "--print-shop",
        shop.to_str().unwrap(),
    ]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
}

#[test]
fn device_colour_the_intent_does_not_allow_stops_the_print_file_naming_the_piece() {
    let dir = scratch("pdfx-colour");
    // An RGB output intent (a display profile relabelled as an output
    // profile: for this test only) and a letter whose headings are CMYK.
    let mut rgb = std::fs::read("/usr/share/color/icc/ghostscript/srgb.icc")
        .or_else(|_| std::fs::read("/usr/share/color/icc/sRGB.icc"))
        .expect("an sRGB ICC profile from ghostscript or icc-profiles-free");
    rgb[12..16].copy_from_slice(b"prtr");
    let shop = shop_with(&dir.join("shop"), &rgb, "p.icc");
    let layouts = layouts_edited(
        &dir,
        "welcome-letter/4/lib/letterhead.typ",
        &[(
            "#let ink = rgb(\"#0b3d6e\")",
            "#let ink = cmyk(90%, 50%, 0%, 40%)",
        )],
    );
    let res = print_with(Some(&layouts), &shop, &dir.join("run"));
    assert_ne!(res.status.code(), Some(0), "{}", describe(&res));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("piece 1 (record") && err.contains("DeviceCMYK"),
        "{err}"
    );
    assert!(!dir.join("run/manifest.json").exists());
    // Resuming without the print shop's file would make files without the
    // PDF/X the run was started for: refused.
    let data = root().join("fixtures/customers.csv");
    let plain = ["--print", "--channels", "pdf", "--resume"];
    let res = run_layout_with(&layouts, "welcome-letter", &data, &dir.join("run"), &plain);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("--print-shop (was given, now none)"),
        "{}",
        describe(&res)
    );
    // Control: the same letters for the CMYK intent are made, the run
    // finished by --resume with the right print shop.
    let cmyk = shop_with(
        &dir.join("cmyk"),
        &std::fs::read(fogra39()).unwrap(),
        "p.icc",
    );
    let shop_arg = cmyk.to_str().unwrap();
    let args = [
        "--print",
        "--print-shop",
        shop_arg,
        "--channels",
        "pdf",
        "--resume",
    ];
    let res = run_layout_with(&layouts, "welcome-letter", &data, &dir.join("run"), &args);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let file = dir.join("run/print/print-001.pdf");
    assert!(
        problems(&file, &dir).is_empty(),
        "{:#?}",
        problems(&file, &dir)
    );
}

#[test]
fn a_reprint_is_made_for_the_same_print_shop_with_the_profile_kept_in_the_run() {
    let (dir, out) = printed_for_shop("pdfx-reprint", "");
    let kept = out.join("print/output-profile.icc");
    assert_eq!(sha256_file(&kept), sha256_file(&fogra39()));
    let run = out.to_str().unwrap();
    let res = letterpress(&["reprint", run, "--pieces", "2,5"]);
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let file = out.join("print/reprint-001-001.pdf");
    let found = problems(&file, &dir);
    assert!(found.is_empty(), "{found:#?}");
    // A kept profile changed since: the reprint is refused, not made
    // without its output intent or with another one.
    let mut bytes = std::fs::read(&kept).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&kept, bytes).unwrap();
    let res = letterpress(&["reprint", run, "--pieces", "2"]);
    assert_eq!(res.status.code(), Some(2), "{}", describe(&res));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("SHA-256 differs"),
        "{}",
        describe(&res)
    );
    assert!(!out.join("print/reprint-002-001.pdf").exists());
}

type Edit = Box<dyn FnOnce(&mut Document)>;

/// For each rule, an edit of a good file that breaks exactly it
/// (`display`: a display profile's bytes).
fn breakers(display: Vec<u8>) -> Vec<(&'static str, Edit)> {
    vec![
        ("header", Box::new(|d| d.version = "1.7".into())),
        (
            "id",
            Box::new(|d| {
                d.trailer.remove(b"ID");
            }),
        ),
        (
            "output-intent",
            Box::new(|d| {
                catalog_mut(d).remove(b"OutputIntents");
            }),
        ),
        (
            "profile",
            Box::new(move |d| {
                let intents = catalog_mut(d)
                    .get(b"OutputIntents")
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .clone();
                let intent = d
                    .get_dictionary(intents[0].as_reference().unwrap())
                    .unwrap();
                let profile = intent
                    .get(b"DestOutputProfile")
                    .unwrap()
                    .as_reference()
                    .unwrap();
                let stream = Stream::new(dictionary! { "N" => 4 }, display);
                d.objects.insert(profile, Object::Stream(stream));
            }),
        ),
        (
            "xmp",
            Box::new(|d| {
                let meta = catalog_mut(d)
                    .get(b"Metadata")
                    .unwrap()
                    .as_reference()
                    .unwrap();
                let s = d.get_object_mut(meta).unwrap().as_stream_mut().unwrap();
                let x = String::from_utf8(s.content.clone()).unwrap();
                let at = x.find("<pdfvtid:GTS_PDFVTModDate>").unwrap() + 27;
                let x = format!("{}1999{}", &x[..at], &x[at + 4..]);
                s.set_content(x.into_bytes());
            }),
        ),
        (
            "info",
            Box::new(|d| {
                let info = d.trailer.get(b"Info").unwrap().as_reference().unwrap();
                d.get_dictionary_mut(info).unwrap().remove(b"Trapped");
            }),
        ),
        (
            "trim",
            Box::new(|d| {
                let p = page(d, 3);
                d.get_dictionary_mut(p).unwrap().remove(b"TrimBox");
            }),
        ),
        (
            "annots",
            Box::new(|d| {
                let p = page(d, 2);
                let link = dictionary! { "Type" => "Annot", "Subtype" => "Link", "Rect" => vec![0.into(), 0.into(), 10.into(), 10.into()] };
                d.get_dictionary_mut(p)
                    .unwrap()
                    .set("Annots", vec![Object::Dictionary(link)]);
            }),
        ),
        (
            "actions",
            Box::new(|d| {
                let js = dictionary! { "S" => "JavaScript", "JS" => Object::string_literal("app.alert(1)") };
                catalog_mut(d).set("OpenAction", js);
            }),
        ),
        (
            "colour",
            Box::new(|d| {
                let p = page(d, 1);
                let red = d.add_object(Stream::new(
                    dictionary! {},
                    b"1 0 0 rg 0 0 10 10 re f".to_vec(),
                ));
                let dict = d.get_dictionary_mut(p).unwrap();
                let mut contents = match dict.get(b"Contents").unwrap().clone() {
                    Object::Array(a) => a,
                    other => vec![other],
                };
                contents.push(Object::Reference(red));
                dict.set("Contents", contents);
            }),
        ),
        (
            "dparts",
            Box::new(|d| {
                let p = page(d, 4);
                d.get_dictionary_mut(p).unwrap().remove(b"DPart");
            }),
        ),
        (
            "fonts",
            Box::new(|d| {
                let fd = d
                    .objects
                    .iter()
                    .find(|(_, o)| o.as_dict().is_ok_and(|d| d.has_type(b"FontDescriptor")))
                    .map(|(id, _)| *id)
                    .unwrap();
                let dict = d.get_dictionary_mut(fd).unwrap();
                for k in [&b"FontFile"[..], b"FontFile2", b"FontFile3"] {
                    dict.remove(k);
                }
            }),
        ),
    ]
}
