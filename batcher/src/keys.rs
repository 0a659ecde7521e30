//! Key files: `anchord keygen` writes them, the sealer and the witness read
//! them. The private key file holds one line in the golang.org/x/mod/sumdb/note
//! form `PRIVATE+KEY+<name>+<hex key id>+<base64(alg || seed)>`; the `.pub`
//! beside it the vkey `<name>+<hex key id>+<base64(alg || pubkey)>`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anchord_core::checkpoint::{ALG_COSIGNATURE_V1, ALG_ED25519, NoteSigner};

use crate::BatcherError;

/// What `keygen` wrote.
#[derive(Debug)]
pub struct Generated {
    pub private_path: PathBuf,
    pub public_path: PathBuf,
    pub vkey: String,
}

/// Generate a key: a note key for a sealer, or a cosignature/v1 key for a
/// witness. Refuses to overwrite; the private file is created mode 0600.
pub fn keygen(name: &str, witness: bool, out: &Path) -> Result<Generated, BatcherError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| BatcherError::Key(format!("no randomness: {e}")))?;
    let alg = if witness {
        ALG_COSIGNATURE_V1
    } else {
        ALG_ED25519
    };
    let signer =
        NoteSigner::from_seed(name, alg, &seed).map_err(|e| BatcherError::Key(e.to_string()))?;
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    let io = |p: &Path, e: std::io::Error| BatcherError::Key(format!("{}: {e}", p.display()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(out).map_err(|e| io(out, e))?;
    writeln!(f, "{}", signer.private_key_text()).map_err(|e| io(out, e))?;
    let vkey = signer.verifier().vkey();
    std::fs::write(&public_path, format!("{vkey}\n")).map_err(|e| io(&public_path, e))?;
    Ok(Generated {
        private_path: out.to_owned(),
        public_path,
        vkey,
    })
}

/// Read a private key file and check its algorithm.
pub fn load_signer(path: &Path, want_alg: u8) -> Result<NoteSigner, BatcherError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BatcherError::Key(format!("{}: {e}", path.display())))?;
    let signer = NoteSigner::parse(text.trim())
        .map_err(|e| BatcherError::Key(format!("{}: {e}", path.display())))?;
    if signer.alg() != want_alg {
        return Err(BatcherError::Key(format!(
            "{}: algorithm byte 0x{:02x}, want 0x{want_alg:02x} ({})",
            path.display(),
            signer.alg(),
            if want_alg == ALG_ED25519 {
                "a sealer note key: anchord keygen without --witness"
            } else {
                "a witness cosignature key: anchord keygen --witness"
            }
        )));
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_private_key_that_loads_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("anchord-keygen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("sealer.key");
        let _ = std::fs::remove_file(&out);
        let g = keygen("bank-a.example/ledger", false, &out).unwrap();
        let s = load_signer(&out, ALG_ED25519).unwrap();
        assert_eq!(s.verifier().vkey(), g.vkey);
        assert_eq!(
            std::fs::read_to_string(&g.public_path).unwrap().trim(),
            g.vkey
        );
        assert!(load_signer(&out, ALG_COSIGNATURE_V1).is_err());
        assert!(keygen("x", false, &out).is_err(), "overwrote a key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
