//! Persistent node identity: a secp256k1 libp2p key in the data dir.
//!
//! secp256k1, as on Ethereum's networks: discv5 opens its sessions with an ECDH on the node
//! key, and the discv5 crate supports only secp256k1 for that — a node with an ed25519 key can
//! sign an ENR but can never be talked to over discovery. The key file holds the libp2p
//! protobuf encoding of the keypair (which names the key type). A file of exactly 32 bytes is
//! a raw ed25519 secret as earlier versions wrote it: still loaded, so the peer id survives,
//! but such a node must run without discovery (static peers) until the file is replaced.
//!
//! The file is created with mode 0600 on first start and reused afterwards; a key file that
//! anyone but the owner may read or write is refused, the way ssh refuses a private key with
//! loose permissions.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use alloy_rpc_types_engine::JwtSecret;
use libp2p::identity::{ed25519, Keypair};

use preconfirmation_types::reexports::secp256k1::SecretKey;
use preconfirmation_types::secret_key_from_bytes;

use crate::error::NodeError;

/// File name of the node key inside the data dir.
pub const NODE_KEY_FILE: &str = "node.key";

/// Length of a node key file of earlier versions: a raw ed25519 secret.
const LEGACY_ED25519_KEY_LEN: usize = 32;

/// Permission bits a key file may not have: any access for group or others.
const LOOSE_PERMISSION_BITS: u32 = 0o077;

/// Loads the node key from `data_dir`, creating it (mode 0600) when it does not exist.
pub fn load_or_create_node_key(data_dir: &Path) -> Result<Keypair, NodeError> {
    let path = data_dir.join(NODE_KEY_FILE);
    match fs::metadata(&path) {
        Ok(meta) => {
            ensure_private(&path, &meta)?;
            let mut bytes = fs::read(&path).map_err(|e| NodeError::io(&path, e))?;
            let invalid = || NodeError::KeyFileInvalid { path: path.clone() };
            if bytes.len() == LEGACY_ED25519_KEY_LEN {
                let secret =
                    ed25519::SecretKey::try_from_bytes(&mut bytes).map_err(|_| invalid())?;
                return Ok(Keypair::from(ed25519::Keypair::from(secret)));
            }
            Keypair::from_protobuf_encoding(&bytes).map_err(|_| invalid())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_node_key(&path),
        Err(e) => Err(NodeError::io(&path, e)),
    }
}

/// Environment variable that may carry the preconfer secret key as hex (never a flag).
pub const PRECONFER_KEY_ENV: &str = "PRECONF_PRECONFER_KEY";

/// The preconfer signing key: from `file` (hex, must be private to its owner) or, when no file
/// is configured, from the `PRECONF_PRECONFER_KEY` value `env`. The key is never logged; errors
/// name the file, not its content.
pub fn load_preconfer_key(
    file: Option<&Path>,
    env: Option<String>,
) -> Result<Option<SecretKey>, NodeError> {
    let (text, origin) = match (file, env) {
        (Some(path), _) => {
            ensure_private(
                path,
                &fs::metadata(path).map_err(|e| NodeError::io(path, e))?,
            )?;
            (
                fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?,
                path.to_path_buf(),
            )
        }
        (None, Some(value)) => (value, PathBuf::from(format!("${PRECONFER_KEY_ENV}"))),
        (None, None) => return Ok(None),
    };
    let invalid = || NodeError::KeyFileInvalid {
        path: origin.clone(),
    };
    let trimmed = text.trim();
    let hex_text = trimmed.strip_prefix("0x").unwrap_or(trimmed);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| invalid())?;
    secret_key_from_bytes(bytes)
        .map(Some)
        .map_err(|_| invalid())
}

/// Refuses a key file that anyone but its owner may read or write.
fn ensure_private(path: &Path, meta: &fs::Metadata) -> Result<(), NodeError> {
    let mode = meta.permissions().mode();
    if mode & LOOSE_PERMISSION_BITS != 0 {
        return Err(NodeError::KeyFilePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path` with mode 0600, durably.
fn create_private_file(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| NodeError::io(path, e))?;
    file.write_all(bytes).map_err(|e| NodeError::io(path, e))?;
    file.sync_all().map_err(|e| NodeError::io(path, e))
}

fn create_node_key(path: &Path) -> Result<Keypair, NodeError> {
    let keypair = Keypair::generate_secp256k1();
    let encoded = keypair
        .to_protobuf_encoding()
        .map_err(|e| NodeError::Storage(format!("encoding the node key: {e}")))?;
    create_private_file(path, &encoded)?;
    Ok(keypair)
}

/// File name of the JSON-RPC JWT secret inside the data dir, when `rpc.jwt_secret_file` is
/// not set.
pub const JWT_SECRET_FILE: &str = "jwt.hex";

/// The JSON-RPC JWT secret (32 bytes as hex, as execution clients keep their engine API
/// secret) from `path`, created (random, mode 0600) when it does not exist. A file that anyone
/// but the owner may read or write is refused.
pub fn load_or_create_jwt_secret(path: &Path) -> Result<JwtSecret, NodeError> {
    match fs::metadata(path) {
        Ok(meta) => {
            ensure_private(path, &meta)?;
            let text = fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?;
            JwtSecret::from_hex(text.trim()).map_err(|_| NodeError::KeyFileInvalid {
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = JwtSecret::random();
            create_private_file(path, hex::encode(secret.as_bytes()).as_bytes())?;
            Ok(secret)
        }
        Err(e) => Err(NodeError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_node_key(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(NODE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_or_create_node_key(dir.path()).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        // secp256k1: the only key type discv5 can open sessions with.
        assert_eq!(first.key_type(), libp2p::identity::KeyType::Secp256k1);
    }

    #[test]
    fn a_raw_ed25519_key_of_earlier_versions_keeps_its_peer_id() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = ed25519::Keypair::generate();
        create_private_file(&dir.path().join(NODE_KEY_FILE), legacy.secret().as_ref()).unwrap();
        let loaded = load_or_create_node_key(dir.path()).unwrap();
        assert_eq!(
            loaded.public().to_peer_id(),
            Keypair::from(legacy).public().to_peer_id()
        );
    }

    #[test]
    fn world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_node_key(dir.path()).unwrap();
        let path = dir.path().join(NODE_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create_node_key(dir.path()),
            Err(NodeError::KeyFilePermissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn preconfer_key_from_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("preconfer.key");
        let hex_key = format!("0x{}\n", "11".repeat(32));
        create_private_file(&path, hex_key.as_bytes()).unwrap();
        let from_file = load_preconfer_key(Some(&path), None).unwrap().unwrap();
        let from_env = load_preconfer_key(None, Some("11".repeat(32)))
            .unwrap()
            .unwrap();
        assert_eq!(from_file, from_env);
        assert!(load_preconfer_key(None, None).unwrap().is_none());
        assert!(matches!(
            load_preconfer_key(None, Some("zz".into())),
            Err(NodeError::KeyFileInvalid { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            load_preconfer_key(Some(&path), None),
            Err(NodeError::KeyFilePermissions { .. })
        ));
    }

    #[test]
    fn garbage_key_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NODE_KEY_FILE);
        create_private_file(&path, b"short").unwrap();
        assert!(matches!(
            load_or_create_node_key(dir.path()),
            Err(NodeError::KeyFileInvalid { .. })
        ));
    }
}
