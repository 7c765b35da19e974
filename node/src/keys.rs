//! Key files: the agent's signing seed, the libp2p peer key and
//! organization root keys.
//!
//! The agent key (which signs proposals and responses) and the libp2p peer key
//! (which authenticates the transport and signs gossip frames) are separate on
//! purpose: rotating or losing one must not expose the other. Every key file is
//! created with mode 0600, never overwritten, and read back strictly.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the agent's signing seed inside the data directory.
pub const AGENT_KEY_FILE: &str = "agent.key";
/// File name of the libp2p identity inside the data directory.
pub const PEER_KEY_FILE: &str = "peer.key";
/// File name of an organization root seed inside the data directory.
pub const ORG_KEY_FILE: &str = "org.key";
/// File name of the human key (signs decisions on escalations from the page
/// and `acp decide`) inside the data directory.
pub const HUMAN_KEY_FILE: &str = "human.key";
/// File name of the outcome reporter key inside the data directory.
pub const REPORTER_KEY_FILE: &str = "reporter.key";
/// File name of the HTTP API bearer token inside the data directory.
pub const TOKEN_FILE: &str = "api.token";

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file already exists; keys are never overwritten.
    #[error("key file {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not hold what it should.
    #[error("key file {0} is malformed (expected 64 hex digits)")]
    Malformed(PathBuf),
    /// The libp2p identity could not be decoded.
    #[error("peer key file {0} is malformed: {1}")]
    Peer(PathBuf, String),
    /// The OS random number generator failed.
    #[error("random number generator: {0}")]
    Random(String),
}

/// A fresh 32-byte seed from the OS random number generator.
pub fn random_seed() -> Result<[u8; 32], KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(seed)
}

/// Writes `contents` to a new file with mode 0600 (fails if it exists).
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_owned())
        } else {
            io(e)
        }
    })?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// Creates a new seed file (hex, one line) and returns the seed.
pub fn create_seed_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let seed = random_seed()?;
    write_seed_file(path, seed)?;
    Ok(seed)
}

/// Writes a given seed as a new seed file (hex, one line, mode 0600): for
/// seeds the caller derives itself, e.g. reproducible test keys.
pub fn write_seed_file(path: &Path, seed: [u8; 32]) -> Result<(), KeyError> {
    let mut text = hex::encode(seed);
    text.push('\n');
    write_secret(path, text.as_bytes())
}

/// Reads a seed file written by [`create_seed_file`].
pub fn read_seed_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed(path.to_owned()))?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Malformed(path.to_owned()))
}

/// Creates a new API bearer token file (64 hex digits, mode 0600).
pub fn create_token_file(path: &Path) -> Result<String, KeyError> {
    write_token_file(path, random_seed()?)
}

/// Writes the token made of `secret` (64 hex digits) as a new token file
/// (mode 0600).
pub fn write_token_file(path: &Path, secret: [u8; 32]) -> Result<String, KeyError> {
    let token = hex::encode(secret);
    write_secret(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Reads the API bearer token, creating the file if it does not exist yet
/// (data directories initialized before the HTTP API had none).
pub fn read_or_create_token(path: &Path) -> Result<String, KeyError> {
    match fs::read_to_string(path) {
        Ok(t) if t.trim().len() >= 32 => Ok(t.trim().to_owned()),
        Ok(_) => Err(KeyError::Malformed(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_token_file(path),
        Err(source) => Err(KeyError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads a seed file if it exists (`None` when absent).
pub fn read_optional_seed(path: &Path) -> Result<Option<[u8; 32]>, KeyError> {
    if path.exists() {
        read_seed_file(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Creates a new libp2p Ed25519 identity file (protobuf encoding).
pub fn create_peer_key(path: &Path) -> Result<libp2p::identity::Keypair, KeyError> {
    write_peer_key(path, libp2p::identity::Keypair::generate_ed25519())
}

/// Writes the libp2p Ed25519 identity with this secret key as a new
/// identity file.
pub fn write_peer_key_seed(
    path: &Path,
    seed: [u8; 32],
) -> Result<libp2p::identity::Keypair, KeyError> {
    let kp = libp2p::identity::Keypair::ed25519_from_bytes(seed)
        .map_err(|e| KeyError::Peer(path.to_owned(), e.to_string()))?;
    write_peer_key(path, kp)
}

fn write_peer_key(
    path: &Path,
    kp: libp2p::identity::Keypair,
) -> Result<libp2p::identity::Keypair, KeyError> {
    let bytes = kp
        .to_protobuf_encoding()
        .map_err(|e| KeyError::Peer(path.to_owned(), e.to_string()))?;
    write_secret(path, &bytes)?;
    Ok(kp)
}

/// Reads a libp2p identity file written by [`create_peer_key`].
pub fn read_peer_key(path: &Path) -> Result<libp2p::identity::Keypair, KeyError> {
    let bytes = fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    libp2p::identity::Keypair::from_protobuf_encoding(&bytes)
        .map_err(|e| KeyError::Peer(path.to_owned(), e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn seed_file_round_trip_mode_0600_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(AGENT_KEY_FILE);
        let seed = create_seed_file(&p).unwrap();
        assert_eq!(read_seed_file(&p).unwrap(), seed);
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o600);
        assert!(matches!(create_seed_file(&p), Err(KeyError::Exists(_))));
        assert_eq!(read_seed_file(&p).unwrap(), seed);
    }

    #[test]
    fn peer_key_round_trip_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(PEER_KEY_FILE);
        let kp = create_peer_key(&p).unwrap();
        assert_eq!(read_peer_key(&p).unwrap().public(), kp.public());
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn given_seeds_give_the_same_keys_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
        let ka = write_peer_key_seed(&a, [7; 32]).unwrap();
        let kb = write_peer_key_seed(&b, [7; 32]).unwrap();
        assert_eq!(ka.public(), kb.public());
        assert_eq!(read_peer_key(&a).unwrap().public(), ka.public());
        let s = dir.path().join("s.key");
        write_seed_file(&s, [9; 32]).unwrap();
        assert_eq!(read_seed_file(&s).unwrap(), [9; 32]);
        #[cfg(unix)]
        for p in [&a, &s] {
            assert_eq!(mode(p), 0o600);
        }
    }

    #[test]
    fn malformed_seed_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.key");
        fs::write(&p, "not hex").unwrap();
        let e = read_seed_file(&p).unwrap_err().to_string();
        assert!(e.contains("malformed"), "{e}");
    }
}
