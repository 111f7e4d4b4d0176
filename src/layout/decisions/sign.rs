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
