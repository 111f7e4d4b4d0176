//! Releasing a run: for a layout whose policy names a `release` role, a
//! finished run's output leaves only once a person in that role has opened
//! its report and a sample of its documents in the review workspace and
//! released it (`release.json`, signed by the workspace's key for them).
//! `send` asks [`refusal`] before it sends anything.
//!
//! The policy and the keys are those of the trust list the run recorded
//! (its copy in `approval/trust.yaml`, which `verify` checks against the
//! manifest): the run is released under the rules it was made under. The
//! record names the run's manifest digest, so it releases that run as it
//! was and nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_key::{HashAlg, SshSig};

use crate::error::{Error, Result};
use crate::layout::decisions::sign::KeyFile;
use crate::layout::trust::Trust;
use crate::manifest::folder::LOCK_FILE;
use crate::model::decision::Signer;
use crate::model::manifest::{Manifest, MANIFEST_FILE};
use crate::model::release::{
    release_meaning, Release, ReleaseKind, RELEASE_FILE, RELEASE_NAMESPACE,
};
use crate::model::vocab::DocStatus;
use crate::ops::review::Reviewer;
use crate::util::fs::{sync_dir, write_atomic};
use crate::util::lock::{Lock, LockTerms};

/// Where a run stands as to its release.
#[derive(Debug, Clone)]
pub enum Standing {
    /// Its layout's policy asks for no release.
    NotRequired,
    /// Waiting for a release by this role.
    Awaiting(String),
    /// Released or stopped, by this record.
    Decided(Box<Release>),
    /// Its release record does not check: why.
    Invalid(String),
}

/// A run, its trust list copy, and the role its layout's policy names to
/// release it.
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The trust list it recorded.
    pub trust: Option<Trust>,
    /// The role that releases it, if one must.
    pub role: Option<String>,
}

impl Run {
    /// Reads the run folder `dir`.
    pub fn open(dir: &Path) -> Result<Run> {
        let (manifest, intact) =
            crate::manifest::read_checked(&dir.join(MANIFEST_FILE), "release")?;
        if !intact {
            return Err(Error::Input(format!(
                "{}: manifest.json was edited after the run; `letterpress verify` says more",
                dir.display()
            )));
        }
        let entry = manifest
            .layout
            .approval
            .as_ref()
            .and_then(|a| a.trust.as_ref());
        let trust = match entry {
            Some(t) => {
                let copy = dir.join("approval").join("trust.yaml");
                let bytes = std::fs::read(&copy).map_err(|e| Error::io(&copy, e))?;
                let trust = Trust::parse(&copy, bytes)?;
                if trust.sha256 != t.sha256 {
                    return Err(Error::Input(format!(
                        "{}: not the trust list the run recorded (SHA-256 {}, the manifest says {})",
                        copy.display(),
                        trust.sha256,
                        t.sha256
                    )));
                }
                Some(trust)
            }
            None => None,
        };
        let role = trust
            .as_ref()
            .and_then(|t| t.rule(&manifest.layout.name).release.clone());
        Ok(Run {
            dir: dir.to_path_buf(),
            manifest,
            trust,
            role,
        })
    }

    /// `NAME@N`.
    pub fn layout(&self) -> String {
        format!(
            "{}@{}",
            self.manifest.layout.name, self.manifest.layout.version
        )
    }

    /// Where it stands.
    pub fn standing(&self) -> Standing {
        let (Some(role), Some(trust)) = (&self.role, &self.trust) else {
            return Standing::NotRequired;
        };
        if std::fs::symlink_metadata(self.dir.join(RELEASE_FILE)).is_err() {
            return Standing::Awaiting(role.clone());
        }
        match read(&self.dir).and_then(|(bytes, sig)| self.check(&bytes, &sig, trust, role)) {
            Ok(r) => Standing::Decided(Box::new(r)),
            Err(why) => Standing::Invalid(why),
        }
    }

    /// Checks a release record's bytes and signature: by the workspace's
    /// key, for a person of the trust list logged in at its provider, in
    /// the release role, of this run's manifest, in its own words.
    fn check(
        &self,
        bytes: &[u8],
        sig: &[u8],
        trust: &Trust,
        role: &str,
    ) -> std::result::Result<Release, String> {
        let r: Release = serde_json::from_slice(bytes)
            .map_err(|e| format!("release.json does not read ({e})"))?;
        let sig = std::str::from_utf8(sig)
            .ok()
            .and_then(|s| SshSig::from_pem(s).ok())
            .ok_or("release.json.sig is not an SSH signature")?;
        if sig.namespace() != RELEASE_NAMESPACE {
            return Err(format!(
                "its signature is made for `{}`, not for a release",
                sig.namespace()
            ));
        }
        let fp = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
        let (Some(key), Some(ws)) = (trust.workspace_key(&fp), &trust.list.workspace) else {
            return Err(format!(
                "it is signed by {fp}, not by the review workspace's key"
            ));
        };
        if key.public.verify(RELEASE_NAMESPACE, bytes, &sig).is_err() || r.key != fp {
            return Err("it was altered: its signature does not verify".into());
        }
        if let Some(why) = key.refuses(&r.at) {
            return Err(format!("it is signed with {why}"));
        }
        if r.login.workspace != ws.id || r.login.issuer != ws.issuer {
            return Err("it names another workspace or identity provider".into());
        }
        let person = trust.by_login(&r.login.subject).ok_or_else(|| {
            format!(
                "its login {:?} is nobody's in the trust list",
                r.login.subject
            )
        })?;
        if r.signer.id != person.id
            || r.signer.name != person.name
            || r.signer.role != role
            || !person.roles.iter().any(|x| x == role)
        {
            return Err(format!("it is not by a person holding `{role}` as it says"));
        }
        if r.run_id != self.manifest.run_id
            || r.manifest_digest != self.manifest.manifest_digest
            || r.layout != self.layout()
        {
            return Err("it is about another run, or this run's manifest changed since".into());
        }
        if r.meaning != release_meaning(&r) {
            return Err("its words do not match its fields".into());
        }
        if r.decision == ReleaseKind::Stopped
            && r.reason.as_deref().is_none_or(|s| s.trim().is_empty())
        {
            return Err("it stops the run without a reason".into());
        }
        Ok(r)
    }
}

/// The release record and its signature: files of the run folder itself,
/// opened without following a link, of at most 1 MiB each.
fn read(dir: &Path) -> std::result::Result<(Vec<u8>, Vec<u8>), String> {
    let one = |name: &str| -> std::result::Result<Vec<u8>, String> {
        let file = crate::util::fs::open_inside(dir, name).map_err(|e| format!("{name}: {e}"))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, (1 << 20) + 1), &mut bytes)
            .map_err(|e| format!("{name}: {e}"))?;
        match bytes.len() > 1 << 20 {
            true => Err(format!("{name} is larger than any release record")),
            false => Ok(bytes),
        }
    };
    Ok((one(RELEASE_FILE)?, one(&format!("{RELEASE_FILE}.sig"))?))
}

/// Why the output of the run in `dir` may not leave yet, if so (for
/// `send`).
pub fn refusal(dir: &Path) -> Result<Option<String>> {
    let run = Run::open(dir)?;
    Ok(match run.standing() {
        Standing::NotRequired => None,
        Standing::Decided(r) if r.decision == ReleaseKind::Released => None,
        Standing::Awaiting(role) => Some(format!(
            "the policy of {} asks that each run be released by {role} in the review workspace before its output leaves, and this run is not released yet",
            run.manifest.layout.name
        )),
        Standing::Decided(r) => Some(format!(
            "{} stopped this run on {}: {}",
            r.signer.name,
            &r.at[..10],
            r.reason.unwrap_or_default()
        )),
        Standing::Invalid(why) => Some(format!("its release record does not count: {why}")),
    })
}

/// A document of the run a reviewer opens before releasing it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `RECORD channel`, as the release record lists it.
    pub name: String,
    /// Its path in the run folder.
    pub path: String,
    /// Its channel (`pdf`, `email`, `web`).
    pub channel: String,
    /// Why it was drawn.
    pub why: String,
}

/// The documents to open before releasing: the first rendered document of
/// each channel, format and locale, and up to `random` more drawn at
/// random (seeded by the manifest digest, so the same run draws the same).
pub fn sample(run: &Run, random: usize) -> Result<Vec<Sample>> {
    let docs = crate::manifest::journal::read_all(&run.dir)?;
    let rendered: Vec<_> = docs
        .iter()
        .filter(|d| d.status == DocStatus::Rendered && d.path.is_some())
        .collect();
    let mut seen = BTreeSet::new();
    let mut picked: Vec<(usize, String)> = Vec::new();
    for (i, d) in rendered.iter().enumerate() {
        let format = d.format.map(|f| f.name().to_owned()).unwrap_or_default();
        let key = (
            d.channel.clone(),
            format.clone(),
            d.locale.clone().unwrap_or_default(),
        );
        if seen.insert(key) {
            picked.push((i, first(&d.channel, &format, d.locale.as_deref())));
        }
    }
    let seed =
        u64::from_str_radix(run.manifest.manifest_digest.get(..16).unwrap_or("1"), 16).unwrap_or(1);
    let mut rng = crate::util::rng::Rng::new(seed);
    let others: Vec<usize> = (0..rendered.len())
        .filter(|i| !picked.iter().any(|(p, _)| p == i))
        .collect();
    let mut others = others;
    for _ in 0..random.min(others.len()) {
        let at = rng.below(others.len() as u64) as usize;
        picked.push((others.remove(at), "drawn at random".into()));
    }
    picked.sort();
    Ok(picked
        .into_iter()
        .map(|(i, why)| {
            let d = rendered[i];
            Sample {
                name: format!(
                    "{} {}",
                    d.record_id
                        .clone()
                        .unwrap_or_else(|| format!("line {}", d.line)),
                    d.channel
                ),
                path: d.path.clone().unwrap_or_default(),
                channel: d.channel.clone(),
                why,
            }
        })
        .collect())
}

/// `the first letter in de-DE, large-print`: why a covering document was
/// drawn.
fn first(channel: &str, format: &str, locale: Option<&str>) -> String {
    let kind = match channel {
        "pdf" => "letter",
        "web" => "web letter",
        other => other,
    };
    let mut why = format!("the first {kind}");
    if let Some(l) = locale {
        why.push_str(&format!(" in {l}"));
    }
    if !format.is_empty() {
        why.push_str(&format!(", {format}"));
    }
    why
}

/// Releases or stops the run for `who`, signed by the workspace's key
/// `signer`; `opened` lists what they opened (`report` and the samples'
/// names; all of them to release). `confirm` sees the record first.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    run: &Run,
    who: &Reviewer,
    kind: ReleaseKind,
    reason: Option<String>,
    opened: &[String],
    signer: &KeyFile,
    confirm: &dyn Fn(&Release) -> bool,
) -> Result<Release> {
    let terms = LockTerms {
        wait: Duration::from_secs(30),
        ..LockTerms::default()
    };
    let _lock = Lock::take(&run.dir.join(LOCK_FILE), "release", terms, None)?;
    let role = match run.standing() {
        Standing::Awaiting(role) => role,
        Standing::NotRequired => {
            return Err(Error::Usage(format!(
                "the policy of {} asks for no release",
                run.manifest.layout.name
            )))
        }
        Standing::Decided(r) => {
            return Err(Error::Usage(format!(
                "{} already {} this run",
                r.signer.name,
                r.decision.name()
            )))
        }
        Standing::Invalid(why) => {
            return Err(Error::Usage(format!(
                "the run's release record does not count ({why}); remove it first"
            )))
        }
    };
    let person = who
        .person
        .as_ref()
        .filter(|_| who.roles.contains(&role))
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} does not hold `{role}`, which releases runs of {}",
                who.login.name, run.manifest.layout.name
            ))
        })?;
    if kind == ReleaseKind::Stopped && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::Usage("a stop must say why".into()));
    }
    if kind == ReleaseKind::Released {
        let mut all = vec!["report".to_owned()];
        all.extend(sample(run, SAMPLE)?.into_iter().map(|s| s.name));
        let left: Vec<String> = all.into_iter().filter(|n| !opened.contains(n)).collect();
        if !left.is_empty() {
            return Err(Error::Usage(format!(
                "open everything before releasing; not yet opened: {}",
                left.join("; ")
            )));
        }
    }
    let mut r = Release {
        letterpress_release: 1,
        run_id: run.manifest.run_id.clone(),
        manifest_digest: run.manifest.manifest_digest.clone(),
        layout: run.layout(),
        decision: kind,
        meaning: String::new(),
        reason: reason.map(|s| s.trim().to_owned()),
        signer: Signer {
            id: person.id.clone(),
            name: person.name.clone(),
            role,
        },
        key: signer.public_key_fingerprint(),
        at: crate::util::clock::now_rfc3339(),
        login: who.login.clone(),
        opened: opened.to_vec(),
    };
    r.meaning = release_meaning(&r);
    if !confirm(&r) {
        return Err(Error::Usage("not signed: nothing was recorded".into()));
    }
    write(run, signer, &r)?;
    Ok(r)
}

/// The job ticket's name (`print/job-ticket.csv` and `.json`): a print
/// shop prints what it lists.
pub const TICKET: &str = "job-ticket";

/// The ticket of a run that waits for its release: the print files are
/// there, but a print shop finds no `job-ticket` until the release copies
/// this one to it.
pub const HELD_TICKET: &str = "job-ticket-HELD-until-released";

/// The print shop's tickets of a released run, as copies of its held
/// ones: (held, released) paths relative to the run folder.
pub fn released_tickets(run: &Run) -> Vec<(String, String)> {
    let Some(print) = &run.manifest.print else {
        return Vec::new();
    };
    print
        .tickets
        .iter()
        .filter(|t| t.path.contains(HELD_TICKET))
        .map(|t| (t.path.clone(), t.path.replacen(HELD_TICKET, TICKET, 1)))
        .collect()
}

/// How many documents beyond the covering ones a release sample draws.
pub const SAMPLE: usize = 5;

/// Signs and writes the record (signature first), checked as a reader
/// will check it.
fn write(run: &Run, signer: &KeyFile, r: &Release) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(r).expect("a release serializes");
    bytes.push(b'\n');
    let sig = signer.sign_in(RELEASE_NAMESPACE, &bytes)?;
    let trust = run
        .trust
        .as_ref()
        .expect("a release needs the run's trust list");
    let role = run.role.as_deref().expect("a release role");
    if let Err(why) = run.check(&bytes, &sig, trust, role) {
        return Err(Error::Usage(format!(
            "the signed release does not check, so it was not kept: {why}"
        )));
    }
    let path = run.dir.join(RELEASE_FILE);
    let sig_path = run.dir.join(format!("{RELEASE_FILE}.sig"));
    write_atomic(&sig_path, &sig, true).map_err(|e| Error::io(&sig_path, e))?;
    write_atomic(&path, &bytes, true).map_err(|e| Error::io(&path, e))?;
    sync_dir(&run.dir).map_err(|e| Error::io(&run.dir, e))?;
    if r.decision == ReleaseKind::Released {
        for (held, ticket) in released_tickets(run) {
            let (from, to) = (run.dir.join(&held), run.dir.join(&ticket));
            let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
            write_atomic(&to, &bytes, true).map_err(|e| Error::io(&to, e))?;
        }
    }
    Ok(())
}
