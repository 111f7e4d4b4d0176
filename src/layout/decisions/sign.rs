//! Signing a decision record: with OpenSSH's `ssh-keygen -Y sign`, the
//! standard tool, so the key can be a file (with its passphrase asked on
//! the terminal), a key held by `ssh-agent`, or a hardware key that asks
//! for a touch (`sk-ssh-ed25519@openssh.com`); letterpress never sees a
//! private key. Checking signatures is done in process (the `ssh-key`
//! crate), so runs need no OpenSSH.

use std::path::{Path, PathBuf};
use std::process::Command;

use ssh_key::PublicKey;

use crate::error::{Error, Result};
use crate::model::decision::NAMESPACE;

/// Something that signs a file for the decision namespace.
pub trait Sign {
    /// The public key that signs.
    fn public_key(&self) -> &PublicKey;
    /// The armored SSH signature (`-----BEGIN SSH SIGNATURE-----`) of the
    /// file at `path`.
    fn sign(&self, path: &Path) -> Result<Vec<u8>>;
}

/// Signs with `ssh-keygen -Y sign -f KEY`: KEY is a private key file, or a
/// public key file whose private key is in `ssh-agent` (or on a hardware
/// token).
#[derive(Debug, Clone)]
pub struct SshKeygen {
    key: PathBuf,
    public: PublicKey,
}

impl SshKeygen {
    /// The signer for the key file `key`: a public key file (`.pub`), or a
    /// private key file with its `.pub` beside it.
    pub fn new(key: &Path) -> Result<SshKeygen> {
        let public = read_public(key)?;
        Ok(SshKeygen {
            key: key.to_path_buf(),
            public,
        })
    }
}

/// The public key of `key`: the file itself if it is one, else `key.pub`.
fn read_public(key: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(key).map_err(|e| Error::io(key, e))?;
    if let Ok(public) = PublicKey::from_openssh(text.trim()) {
        return Ok(public);
    }
    let mut pub_path = key.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    let text = std::fs::read_to_string(&pub_path).map_err(|_| {
        Error::Usage(format!(
            "--key {}: give a public key file (KEY.pub) or a private key with its .pub beside it",
            key.display()
        ))
    })?;
    PublicKey::from_openssh(text.trim()).map_err(|e| {
        Error::Usage(format!(
            "{}: not a public SSH key ({e})",
            pub_path.display()
        ))
    })
}

impl Sign for SshKeygen {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, path: &Path) -> Result<Vec<u8>> {
        let mut sig_path = path.as_os_str().to_owned();
        sig_path.push(".sig");
        let sig_path = PathBuf::from(sig_path);
        let _ = std::fs::remove_file(&sig_path);
        // stdin and stderr stay the terminal's: a passphrase or a touch of
        // the hardware key is asked for there.
        let out = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
            .arg(&self.key)
            .arg(path)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| {
                Error::Usage(format!(
                    "cannot run ssh-keygen ({e}): signing needs OpenSSH 8.1 or later (openssh-client)"
                ))
            })?;
        if !out.success() {
            return Err(Error::Usage(format!(
                "ssh-keygen could not sign with {} (it said why above); is the key in ssh-agent (`ssh-add -l`), or its private key file readable?",
                self.key.display()
            )));
        }
        let sig = std::fs::read(&sig_path).map_err(|e| Error::io(&sig_path, e))?;
        let _ = std::fs::remove_file(&sig_path);
        Ok(sig)
    }
}

/// Signs in process with a private key file that letterpress reads: the
/// review workspace's own key, which signs for whoever logged in (see
/// [`crate::model::decision::Workspace`]). The file must be readable by its
/// owner only, as OpenSSH demands of private keys.
pub struct KeyFile {
    key: ssh_key::PrivateKey,
    public: PublicKey,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("public", &self.public)
            .finish()
    }
}

impl KeyFile {
    /// Reads the unencrypted OpenSSH private key at `path`.
    pub fn load(path: &Path) -> Result<KeyFile> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::Usage(format!(
                "{}: a private key must be readable by its owner only (chmod 600)",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let key = ssh_key::PrivateKey::from_openssh(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: not an OpenSSH private key ({e})",
                path.display()
            ))
        })?;
        if key.is_encrypted() {
            return Err(Error::Usage(format!(
                "{}: the workspace's key must be unencrypted (it signs without a person at a terminal); keep it readable only by the service's user",
                path.display()
            )));
        }
        let public = key.public_key().clone();
        Ok(KeyFile { key, public })
    }

    /// The armored SSH signature of `bytes` for `namespace`.
    pub fn sign_in(&self, namespace: &str, bytes: &[u8]) -> Result<Vec<u8>> {
        let sig = self
            .key
            .sign(namespace, ssh_key::HashAlg::Sha512, bytes)
            .map_err(|e| Error::Usage(format!("cannot sign with the workspace's key ({e})")))?;
        let pem = sig
            .to_pem(ssh_key::LineEnding::LF)
            .map_err(|e| Error::Usage(format!("cannot write the signature ({e})")))?;
        Ok(pem.into_bytes())
    }

    /// `SHA256:...` of its public key.
    pub fn public_key_fingerprint(&self) -> String {
        self.public
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string()
    }
}

impl Sign for KeyFile {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, path: &Path) -> Result<Vec<u8>> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.sign_in(NAMESPACE, &bytes)
    }
}
