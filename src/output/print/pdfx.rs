//! PDF/VT-1 on PDF/X-4 (ISO 16612-2 on ISO 15930-7) for print files made
//! for a print shop (`run --print --print-shop FILE`).
//!
//! The shop names its output condition in a YAML file
//! ([`crate::model::print::PrintShop`]); letterpress bundles no profile.
//! With it, a print file has header 1.6, one `GTS_PDFX` output intent with
//! the shop's ICC output profile embedded, XMP metadata with the PDF/X-4
//! and PDF/VT-1 identification, `Trapped`, a trailer `/ID`, a `TrimBox`
//! (and with bleed a `BleedBox`) on every page, no annotations or actions,
//! and device colour only where the intent allows it (DeviceGray always,
//! DeviceRGB with an RGB intent, DeviceCMYK with a CMYK one). The stream
//! writer ([`super::stream`]) writes these objects; this module reads the
//! shop's file and builds the metadata.

use std::path::Path;
use std::sync::Arc;

use crate::model::print::{Conformance, PrintSettings, PrintShop, PrintShopUsed};
use crate::util::digest::{hex, sha256_hex};

/// The largest print shop file or profile read (a CMYK output profile is
/// some hundreds of KB).
const MAX_BYTES: u64 = 16 << 20;

/// Reads a print shop's file and its profile (a path inside the file's
/// folder), checking that the profile is an ICC output profile. `date` is
/// the run's as-of date (`YYYY-MM-DD`).
pub fn load(path: &Path, date: &str) -> Result<(PrintShop, Conformance), String> {
    let shown = path.display();
    let yaml = read_capped(path).map_err(|e| format!("--print-shop {shown}: {e}"))?;
    let shop: PrintShop =
        serde_yaml::from_slice(&yaml).map_err(|e| format!("--print-shop {shown}: {e}"))?;
    let spec = &shop.output_intent;
    for (name, value) in [
        ("condition", &spec.condition),
        ("registry", &spec.registry),
        ("info", &spec.info),
    ] {
        if value.trim().is_empty() || value.chars().any(char::is_control) {
            return Err(format!(
                "--print-shop {shown}: output_intent.{name} must be a line of text"
            ));
        }
    }
    if !(0.0..=25.0).contains(&shop.bleed) {
        return Err(format!(
            "--print-shop {shown}: bleed {} mm is not between 0 and 25",
            shop.bleed
        ));
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    let folder = folder.unwrap_or(Path::new("."));
    let profile = crate::util::fs::read_inside(folder, &spec.profile).map_err(|e| {
        format!(
            "--print-shop {shown}: output_intent.profile {}: {e} (a path inside the print shop file's folder)",
            spec.profile
        )
    })?;
    let (components, space) = output_profile(&profile)
        .map_err(|e| format!("--print-shop {shown}: {}: {e}", spec.profile))?;
    let used = PrintShopUsed {
        file: path.display().to_string(),
        sha256: sha256_hex(&yaml),
        name: shop.name.clone(),
        conformance: vec!["PDF/X-4".into(), "PDF/VT-1".into()],
        condition: spec.condition.clone(),
        registry: spec.registry.clone(),
        info: spec.info.clone(),
        profile: spec.profile.clone(),
        profile_sha256: sha256_hex(&profile),
        profile_colour_space: space.into(),
        kept: crate::model::file::FileEntry {
            path: KEPT_PROFILE.into(),
            sha256: sha256_hex(&profile),
            bytes: profile.len() as u64,
        },
        bleed: shop.bleed,
    };
    let conformance = Conformance {
        used,
        profile,
        components,
        date: date.to_owned(),
    };
    Ok((shop, conformance))
}

/// Where a print run keeps the shop's profile, for its reprints.
pub const KEPT_PROFILE: &str = "print/output-profile.icc";

/// Keeps the profile in the run folder `out` (atomically, durably).
pub fn keep(out: &Path, c: &Conformance) -> Result<(), String> {
    let path = out.join(&c.used.kept.path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    crate::util::fs::write_atomic(&path, &c.profile, true)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The conformance a finished run's print files were made with, for a
/// reprint: its profile read back from the run folder and checked against
/// the manifest.
pub fn kept(run: &Path, used: &PrintShopUsed, date: &str) -> Result<Conformance, String> {
    let kept = &used.kept.path;
    let profile = crate::util::fs::read_inside(run, kept)
        .map_err(|e| format!("the print shop's profile kept with the run, {kept}: {e}"))?;
    if sha256_hex(&profile) != used.profile_sha256 {
        return Err(format!(
            "the print shop's profile kept with the run, {kept}, is not the one its print files embed (its SHA-256 differs from the manifest's)"
        ));
    }
    let (components, _) = output_profile(&profile)?;
    Ok(Conformance {
        used: used.clone(),
        profile,
        components,
        date: date.to_owned(),
    })
}

/// A file's bytes, refusing one larger than [`MAX_BYTES`].
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::other("larger than 16 MB"));
    }
    Ok(bytes)
}

/// The components and name of an ICC output profile's colour space, or
/// why the bytes are not one (PDF/X needs an output-class profile:
/// device class `prtr`, colour space gray, RGB or CMYK).
pub fn output_profile(bytes: &[u8]) -> Result<(u8, &'static str), String> {
    use moxcms::{ColorProfile, DataColorSpace, ProfileClass};
    let profile = ColorProfile::new_from_slice(bytes)
        .map_err(|e| format!("not an ICC profile that can be read ({e:?})"))?;
    if profile.profile_class != ProfileClass::OutputDevice {
        return Err(format!(
            "an ICC profile of class {:?}, not an output profile (class prtr): PDF/X needs the print shop's output profile",
            profile.profile_class
        ));
    }
    match profile.color_space {
        DataColorSpace::Cmyk => Ok((4, "CMYK")),
        DataColorSpace::Rgb => Ok((3, "RGB")),
        DataColorSpace::Gray => Ok((1, "GRAY")),
        other => Err(format!(
            "an output profile for {other:?}: PDF/X needs gray, RGB or CMYK"
        )),
    }
}

impl PrintShop {
    /// The layout's print settings with the shop's sheet and envelope
    /// settings, and the conformance the files are made with.
    pub fn apply(&self, settings: &mut PrintSettings, conformance: Conformance) {
        if let Some(e) = &self.envelopes {
            settings.envelopes = e.clone();
        }
        if let Some(w) = self.sheet_weight {
            settings.sheet_weight = w;
        }
        if let Some(m) = self.max_sheets_per_file {
            settings.max_sheets_per_file = m.max(1);
        }
        settings.conformance = Some(Arc::new(conformance));
    }
}

/// The device colour spaces a file with this intent may not use: by name,
/// and the operators that set them.
pub fn forbidden(components: u8) -> (&'static [&'static [u8]], &'static [&'static str]) {
    match components {
        4 => (&[b"DeviceRGB"], &["rg", "RG"]),
        3 => (&[b"DeviceCMYK"], &["k", "K"]),
        _ => (&[b"DeviceRGB", b"DeviceCMYK"], &["rg", "RG", "k", "K"]),
    }
}

/// A print file's identity: 16 bytes from the run, the file's name and the
/// profile, the same for the same run (the trailer's `/ID`, the XMP's
/// document id).
pub fn file_id(run_id: &str, rel: &str, c: &Conformance) -> [u8; 16] {
    let joined = format!("{run_id}\0{rel}\0{}", c.used.profile_sha256);
    let digest = ring::digest::digest(&ring::digest::SHA256, joined.as_bytes());
    let mut id = [0; 16];
    id.copy_from_slice(&digest.as_ref()[..16]);
    id
}

/// The id as a UUID (`uuid:xxxxxxxx-xxxx-...`).
pub fn uuid(id: &[u8; 16]) -> String {
    let h = hex(id);
    format!(
        "uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Escapes text for XML.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The file's XMP metadata: title, dates, ids, trapping and the PDF/X-4
/// and PDF/VT-1 identification (`GTS_PDFVTModDate` = `xmp:ModifyDate`).
pub fn xmp(title: &str, producer: &str, date: &str, id: &[u8; 16]) -> String {
    let (title, producer, uuid) = (xml(title), xml(producer), uuid(id));
    format!(
        r#"<?xpacket begin="﻿" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about=""
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
 xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
 xmlns:pdfxid="http://www.npes.org/pdfx/ns/id/"
 xmlns:pdfvtid="http://www.npes.org/pdfvt/ns/id/">
<dc:format>application/pdf</dc:format>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
<xmp:CreatorTool>{producer}</xmp:CreatorTool>
<xmp:CreateDate>{date}</xmp:CreateDate>
<xmp:ModifyDate>{date}</xmp:ModifyDate>
<xmp:MetadataDate>{date}</xmp:MetadataDate>
<xmpMM:DocumentID>{uuid}</xmpMM:DocumentID>
<xmpMM:InstanceID>{uuid}</xmpMM:InstanceID>
<xmpMM:VersionID>1</xmpMM:VersionID>
<xmpMM:RenditionClass>default</xmpMM:RenditionClass>
<pdf:Producer>{producer}</pdf:Producer>
<pdf:Trapped>False</pdf:Trapped>
<pdfxid:GTS_PDFXVersion>PDF/X-4</pdfxid:GTS_PDFXVersion>
<pdfvtid:GTS_PDFVTVersion>PDF/VT-1</pdfvtid:GTS_PDFVTVersion>
<pdfvtid:GTS_PDFVTModDate>{date}</pdfvtid:GTS_PDFVTModDate>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#
    )
}

/// `YYYY-MM-DD` as the XMP date of that day's midnight UTC, and as a PDF
/// date.
pub fn dates(day: &str) -> (String, String) {
    (
        format!("{day}T00:00:00Z"),
        format!("D:{}000000Z", day.replace('-', "")),
    )
}
