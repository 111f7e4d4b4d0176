//! The trust list: who may decide about layout versions.
//!
//! Part of stage 2 (layouts). The list (`trust.yaml`, see
//! [`crate::model::decision::TrustList`]) is deployment configuration: the
//! commands take it from `--trust`, `LETTERPRESS_TRUST` or `trust.yaml` in
//! the working folder, never from the layouts folder, so whoever can write
//! layouts cannot make themselves a reviewer. Every run records its SHA-256.
//!
//! Loading checks it whole: ids unique and one line each, every key a
//! public SSH key that belongs to one person only, dates real and in order,
//! every role the policy asks for held by somebody. [`Trust::allowed_signers`]
//! writes the same list in OpenSSH's `allowed_signers` format, which
//! `ssh-keygen -Y verify` reads, so an examiner checks signatures without
//! letterpress.

use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, PublicKey};

use crate::error::{Error, Result};
use crate::model::decision::{Person, Rule, TrustList, TrustedKey, NAMESPACE};
use crate::util::clock::Date;
use crate::util::digest::sha256_hex;

/// The trust list's file name when none is named.
pub const TRUST_FILE: &str = "trust.yaml";

/// The role that submits versions for review.
pub const AUTHOR: &str = "author";

/// A loaded, checked trust list.
#[derive(Debug, Clone)]
pub struct Trust {
    /// What the file says.
    pub list: TrustList,
    /// Where it was read from.
    pub path: PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its bytes, for a run folder's copy and an examiner's bundle.
    pub bytes: Vec<u8>,
    keys: Vec<Key>,
    /// The review workspace's keys (their `person` is 0 and means nothing).
    workspace_keys: Vec<Key>,
}

/// A trusted key with its parsed dates.
#[derive(Debug, Clone)]
pub struct Key {
    /// Index of its person in the list.
    pub person: usize,
    /// The key.
    pub public: PublicKey,
    /// `SHA256:...`.
    pub fingerprint: String,
    from: Date,
    until: Option<Date>,
    withdrawn: Option<Date>,
    compromised: bool,
}

impl Trust {
    /// Reads and checks the trust list at `path`.
    pub fn load(path: &Path) -> Result<Trust> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::Layout(format!(
                "the trust list {} cannot be read ({e}); name it with --trust or LETTERPRESS_TRUST",
                path.display()
            ))
        })?;
        Trust::parse(path, bytes)
    }

    /// Checks the trust list `bytes` (read from `path`, e.g. a run's copy).
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Trust> {
        let bad = |why: String| Error::Layout(format!("trust list {}: {why}", path.display()));
        let list: TrustList = serde_yaml::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let keys = check(&list).map_err(&bad)?;
        let workspace_keys = check_workspace(&list, &keys).map_err(bad)?;
        Ok(Trust {
            sha256: sha256_hex(&bytes),
            list,
            path: path.to_path_buf(),
            bytes,
            keys,
            workspace_keys,
        })
    }

    /// The trust list a command uses: `given` (from `--trust` or
    /// `LETTERPRESS_TRUST`), else `trust.yaml` in the working folder;
    /// `None` when that default does not exist (a named one must).
    pub fn find(given: Option<&Path>) -> Result<Option<Trust>> {
        match given {
            Some(path) => Trust::load(path).map(Some),
            None if Path::new(TRUST_FILE).exists() => Trust::load(Path::new(TRUST_FILE)).map(Some),
            None => Ok(None),
        }
    }

    /// The key with this fingerprint and its person.
    pub fn key(&self, fingerprint: &str) -> Option<(&Key, &Person)> {
        self.keys
            .iter()
            .find(|k| k.fingerprint == fingerprint)
            .map(|k| (k, &self.list.people[k.person]))
    }

    /// The review workspace's key with this fingerprint.
    pub fn workspace_key(&self, fingerprint: &str) -> Option<&Key> {
        self.workspace_keys
            .iter()
            .find(|k| k.fingerprint == fingerprint)
    }

    /// The person whose `login` (subject at the workspace's identity
    /// provider) is `subject`.
    pub fn by_login(&self, subject: &str) -> Option<&Person> {
        self.list
            .people
            .iter()
            .find(|p| p.login.as_deref() == Some(subject))
    }

    /// The approvals versions of `layout` need.
    pub fn rule(&self, layout: &str) -> &Rule {
        self.list
            .policy
            .layouts
            .get(layout)
            .unwrap_or(&self.list.policy.default)
    }

    /// The warning every command that uses the demo list prints.
    pub fn demo_warning(&self) -> Option<String> {
        self.list.demo.then(|| {
            format!(
                "the trust list {} is the DEMO list: its private keys are published with letterpress, so its approvals prove nothing; make your own (see the book's chapter \"Approvals a regulator accepts\") before letters go to customers",
                self.path.display()
            )
        })
    }

    /// The list in OpenSSH's `allowed_signers` format for the decision
    /// namespace: one line per key, with the days it may sign
    /// (`valid-after`, `valid-before`, in UTC). A compromised key is left
    /// out (as a comment): nothing it signed counts.
    pub fn allowed_signers(&self) -> String {
        let mut out = format!(
            "# Who may sign letterpress decisions (namespace {NAMESPACE}), from the\n# trust list with SHA-256 {}. Check a record with\n#   ssh-keygen -Y verify -f allowed_signers -I ID -n {NAMESPACE} -s RECORD.sig -Overify-time=TIME < RECORD\n",
            self.sha256
        );
        for key in &self.keys {
            out.push_str(&signer_line(&self.list.people[key.person].id, key));
        }
        if let Some(ws) = &self.list.workspace {
            for key in &self.workspace_keys {
                out.push_str(&signer_line(&ws.id, key));
            }
        }
        out
    }
}

impl Key {
    /// Why the key may not sign at `at` (an RFC 3339 UTC time), if so.
    pub fn refuses(&self, at: &str) -> Option<String> {
        let day = Date::parse(at.get(..10).unwrap_or(""))?;
        if self.compromised {
            let on = self
                .withdrawn
                .map(|d| format!(" on {d}"))
                .unwrap_or_default();
            return Some(format!(
                "a key withdrawn as compromised{on}: nothing it signed counts, whatever its date"
            ));
        }
        if day < self.from {
            return Some(format!("a key valid only from {}", self.from));
        }
        if let Some(until) = self.until.filter(|u| day > *u) {
            return Some(format!("an expired key (valid until {until})"));
        }
        if let Some(w) = self.withdrawn.filter(|w| day >= *w) {
            return Some(format!("a key withdrawn on {w}"));
        }
        None
    }
}

/// The `allowed_signers` line of `key`, signing as `principal`, with the
/// days it may sign; a comment for a compromised key.
fn signer_line(principal: &str, key: &Key) -> String {
    let text = key.public.to_openssh().unwrap_or_default();
    let text = text.split(' ').take(2).collect::<Vec<_>>().join(" ");
    if key.compromised {
        return format!("# compromised, left out: {principal} {text}\n");
    }
    let mut options = format!(
        "namespaces=\"{NAMESPACE}\",valid-after=\"{}\"",
        compact(key.from)
    );
    let last = [key.until.map(|d| d.next()), key.withdrawn]
        .into_iter()
        .flatten()
        .min();
    if let Some(day) = last {
        options.push_str(&format!(",valid-before=\"{}\"", compact(day)));
    }
    format!("{principal} {options} {text}\n")
}

/// `YYYYMMDDZ`: a day in UTC, as `allowed_signers` writes it.
fn compact(d: Date) -> String {
    format!("{}Z", d.to_string().replace('-', ""))
}

/// Checks the whole list; returns its keys.
fn check(list: &TrustList) -> std::result::Result<Vec<Key>, String> {
    let mut keys: Vec<Key> = Vec::new();
    for (i, p) in list.people.iter().enumerate() {
        for (what, text) in [("id", &p.id), ("name", &p.name)] {
            if text.trim().is_empty() || text.chars().any(char::is_control) {
                return Err(format!(
                    "person {}: `{what}` must be one line of text",
                    i + 1
                ));
            }
        }
        if p.id.contains(char::is_whitespace) || p.id.contains(',') || p.id.starts_with('#') {
            return Err(format!(
                "person `{}`: an id holds no spaces or commas and does not start with #",
                p.id
            ));
        }
        if list.people[..i].iter().any(|q| q.id == p.id) {
            return Err(format!("two people have the id `{}`", p.id));
        }
        if p.roles.is_empty() || (p.keys.is_empty() && p.login.is_none()) {
            return Err(format!(
                "person `{}` needs at least one role, and a key or a login",
                p.id
            ));
        }
        if let Some(login) = &p.login {
            if login.trim().is_empty() || login.chars().any(char::is_control) {
                return Err(format!("person `{}`: `login` must be one line", p.id));
            }
            if list.people[..i].iter().any(|q| q.login == p.login) {
                return Err(format!(
                    "two people have the login `{login}`: a login is one person's"
                ));
            }
        }
        for k in &p.keys {
            let key = parse_key(i, p, k)?;
            if let Some(other) = keys.iter().find(|o| o.fingerprint == key.fingerprint) {
                return Err(format!(
                    "the key {} is listed for `{}` and for `{}`: a key belongs to one person",
                    key.fingerprint, list.people[other.person].id, p.id
                ));
            }
            keys.push(key);
        }
    }
    let rules = std::iter::once(("default", &list.policy.default))
        .chain(list.policy.layouts.iter().map(|(n, r)| (n.as_str(), r)));
    for (name, rule) in rules {
        if rule.approvals.is_empty() {
            return Err(format!(
                "policy `{name}` asks for no approval: every layout needs one"
            ));
        }
        for role in &rule.approvals {
            if role == AUTHOR {
                return Err(format!(
                    "policy `{name}`: authors submit, they do not approve"
                ));
            }
            if !list.people.iter().any(|p| p.roles.contains(role)) {
                return Err(format!(
                    "policy `{name}` asks for a `{role}` approval, but nobody holds that role"
                ));
            }
        }
        if let Some(role) = &rule.release {
            if role == AUTHOR || !list.people.iter().any(|p| p.roles.contains(role)) {
                return Err(format!(
                    "policy `{name}`: runs are to be released by `{role}`, which no reviewer holds"
                ));
            }
        }
    }
    Ok(keys)
}

/// Checks the review workspace's entry against the people and their
/// `keys`; returns the workspace's keys.
fn check_workspace(list: &TrustList, keys: &[Key]) -> std::result::Result<Vec<Key>, String> {
    let Some(ws) = &list.workspace else {
        if let Some(p) = list.people.iter().find(|p| p.login.is_some()) {
            return Err(format!(
                "person `{}` has a login, but the list names no review workspace",
                p.id
            ));
        }
        return Ok(Vec::new());
    };
    let one_line = |s: &str| !s.trim().is_empty() && !s.chars().any(char::is_control);
    if !one_line(&ws.name) || !one_line(&ws.issuer) || !one_line(&ws.id) {
        return Err("the workspace's `id`, `name` and `issuer` must each be one line".into());
    }
    if ws.id.contains(char::is_whitespace) || ws.id.contains(',') {
        return Err("the workspace's id holds no spaces or commas".into());
    }
    if list.people.iter().any(|p| p.id == ws.id) {
        return Err(format!(
            "the workspace and a person have the id `{}`",
            ws.id
        ));
    }
    if ws.keys.is_empty() {
        return Err("the workspace needs a key to sign with".into());
    }
    let as_person = Person {
        id: ws.id.clone(),
        name: ws.name.clone(),
        roles: Vec::new(),
        keys: Vec::new(),
        login: None,
    };
    let mut out: Vec<Key> = Vec::new();
    for k in &ws.keys {
        let key = parse_key(0, &as_person, k)?;
        if keys
            .iter()
            .chain(&out)
            .any(|o| o.fingerprint == key.fingerprint)
        {
            return Err(format!(
                "the workspace's key {} is listed twice or for a person as well: it signs only for the workspace",
                key.fingerprint
            ));
        }
        out.push(key);
    }
    Ok(out)
}

/// One key of person `i`, parsed and dated.
fn parse_key(i: usize, p: &Person, k: &TrustedKey) -> std::result::Result<Key, String> {
    let public = PublicKey::from_openssh(k.key.trim()).map_err(|e| {
        format!(
            "person `{}`: `{}` is not a public SSH key ({e})",
            p.id, k.key
        )
    })?;
    let date = |what: &str, s: &str| {
        Date::parse(s).ok_or_else(|| {
            format!(
                "person `{}`: key `{what}` {s:?} is not a YYYY-MM-DD date",
                p.id
            )
        })
    };
    let from = date("from", &k.from)?;
    let until = k.until.as_deref().map(|s| date("until", s)).transpose()?;
    let withdrawn = k
        .withdrawn
        .as_deref()
        .map(|s| date("withdrawn", s))
        .transpose()?;
    if until.is_some_and(|u| u < from) {
        return Err(format!(
            "person `{}`: a key's `until` is before its `from`",
            p.id
        ));
    }
    if k.compromised && withdrawn.is_none() {
        return Err(format!(
            "person `{}`: a compromised key needs the day it was `withdrawn`",
            p.id
        ));
    }
    Ok(Key {
        person: i,
        fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
        public,
        from,
        until,
        withdrawn,
        compromised: k.compromised,
    })
}
