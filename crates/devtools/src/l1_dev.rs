//! A local L1 for `devnet --l1` and the L1 schedule tests: a real anvil process on
//! 127.0.0.1 and the test contracts deployed on it — the whitelist
//! (`testdata/l1/WhitelistScheduleStub.sol`, the view interface of Taiko's `PreconfWhitelist`)
//! and the lookahead store (`testdata/l1/LookaheadStoreStub.sol`, the reader-facing ABI of
//! Taiko's `LookaheadStore`); their bytecode is compiled by `testdata/l1/compile.sh`.
//!
//! anvil comes from the npm registry, pinned, installed by `scripts/install-anvil`; it is
//! found at `$ANVIL_BIN`, then in this checkout's `.tools/`, then on `PATH`
//! ([`find_anvil`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol;
use alloy::sol_types::SolValue;
use preconf_node_core::error::NodeError;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::ToolError;

/// Creation bytecode (hex) of the test whitelist contract.
pub const WHITELIST_STUB_BIN: &str = include_str!("../../../testdata/l1/WhitelistScheduleStub.bin");

/// Creation bytecode (hex) of the test lookahead store contract.
pub const LOOKAHEAD_STORE_STUB_BIN: &str =
    include_str!("../../../testdata/l1/LookaheadStoreStub.bin");

/// The anvil version `scripts/install-anvil` pins.
pub const ANVIL_VERSION: &str = "1.7.1";

/// Longest wait for anvil to listen, and for a transaction's receipt.
pub const L1_WAIT: Duration = Duration::from_secs(30);

sol! {
    /// The test contract's admin functions (its view functions are the node's
    /// `IPreconfWhitelist`).
    #[sol(rpc)]
    interface WhitelistScheduleStub {
        function addOperator(address proposer, address sequencer) external;
        function assignEpoch(uint256 epoch, address proposer) external;
        function currentEpoch() external view returns (uint256);
    }

}

sol!(
    /// The test lookahead store, bound from its compiled ABI: its owner functions
    /// (`postLookahead`, `blacklistOperator`, ...), its `getProposerContext` calculator and the
    /// reader-facing views the node's `ILookaheadStore` also declares.
    #[sol(rpc)]
    LookaheadStoreStub,
    "../../testdata/l1/LookaheadStoreStub.abi.json"
);

/// Deploys `bytecode_hex` with constructor arguments `args` (ABI-encoded) from the anvil
/// owner; returns the contract's address.
pub async fn deploy(anvil: &Anvil, bytecode_hex: &str, args: &[u8]) -> Result<Address, ToolError> {
    let mut code = hex::decode(bytecode_hex.trim())
        .map_err(|e| NodeError::l1("deploy", format!("bytecode: {e}")))?;
    code.extend_from_slice(args);
    let provider = provider(&anvil.url)?;
    let tx = TransactionRequest::default()
        .from(anvil.owner)
        .with_deploy_code(code);
    let receipt = tokio::time::timeout(L1_WAIT, async {
        provider
            .send_transaction(tx)
            .await
            .map_err(|e| NodeError::l1("deploy", e))?
            .get_receipt()
            .await
            .map_err(|e| NodeError::l1("deploy", e))
    })
    .await
    .map_err(|_| NodeError::l1("deploy", "no receipt"))??;
    Ok(receipt
        .contract_address
        .ok_or_else(|| NodeError::l1("deploy", "receipt without a contract address"))?)
}

/// The anvil binary: `$ANVIL_BIN`, this checkout's `.tools/` (what `scripts/install-anvil`
/// installs), foundryup's `~/.foundry/bin/anvil`, or `anvil` on `PATH`; `None` when none exists.
pub fn find_anvil() -> Option<PathBuf> {
    locate_anvil().ok()
}

/// [`find_anvil`], or why not in one line an operator can act on: where it looked and how to
/// install it.
pub fn locate_anvil() -> Result<PathBuf, String> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../.tools/anvil-{ANVIL_VERSION}/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    ));
    search_anvil(
        std::env::var_os("ANVIL_BIN").map(PathBuf::from),
        &tools,
        std::env::var_os("HOME").map(PathBuf::from),
        std::env::var_os("PATH"),
    )
}

/// The search of [`locate_anvil`] over explicit inputs.
fn search_anvil(
    anvil_bin: Option<PathBuf>,
    tools: &Path,
    home: Option<PathBuf>,
    path: Option<std::ffi::OsString>,
) -> Result<PathBuf, String> {
    if let Some(bin) = anvil_bin {
        // Set but wrong is a mistake to name, not a reason to run some other anvil.
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("ANVIL_BIN={} is not a file", bin.display()))
        };
    }
    let foundry = home.map(|h| h.join(".foundry/bin/anvil"));
    let on_path = path.and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("anvil"))
            .find(|p| p.is_file())
    });
    [Some(tools.to_path_buf()), foundry, on_path]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "anvil not found in .tools/ (run scripts/install-anvil from the checkout: needs node \
             and npm), ~/.foundry/bin or PATH; or set ANVIL_BIN to its path"
                .to_string()
        })
}

/// A running anvil, killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its first dev account (unlocked, funded): deploys and owns the contract.
    pub owner: Address,
}

impl Anvil {
    /// Starts `bin` on an ephemeral port of 127.0.0.1, mining a block every `block_time_s`
    /// seconds (so block timestamps follow the wall clock).
    pub async fn start(bin: &Path, block_time_s: u64) -> Result<Self, ToolError> {
        Self::spawn(bin, &["--block-time".into(), block_time_s.to_string()]).await
    }

    /// Starts `bin` with its genesis block at unix second `genesis_timestamp` and no timed
    /// mining: a block per transaction (at least a second after its parent) and per
    /// [`Self::warp_to`], so a test moves L1 time where it wants it, the past included.
    pub async fn start_at(bin: &Path, genesis_timestamp: u64) -> Result<Self, ToolError> {
        Self::spawn(bin, &["--timestamp".into(), genesis_timestamp.to_string()]).await
    }

    async fn spawn(bin: &Path, args: &[String]) -> Result<Self, ToolError> {
        let mut child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ToolError::io(bin, e))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| NodeError::l1("anvil", "no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(L1_WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.trim().strip_prefix("Listening on ") {
                    return Some(addr.trim().to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| NodeError::l1("anvil", "did not report its address"))?;
        // Keep draining stdout so anvil never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let url = format!("http://{listening}");
        let provider = provider(&url)?;
        let owner = *provider
            .get_accounts()
            .await
            .map_err(|e| NodeError::l1("eth_accounts", e))?
            .first()
            .ok_or_else(|| NodeError::l1("eth_accounts", "no dev account"))?;
        Ok(Self { child, url, owner })
    }

    /// Mines the next block at unix second `timestamp` (`evm_setNextBlockTimestamp` then
    /// `evm_mine`): L1 time jumps there.
    pub async fn warp_to(&self, timestamp: u64) -> Result<(), ToolError> {
        let provider = provider(&self.url)?;
        provider
            .raw_request::<_, serde_json::Value>("evm_setNextBlockTimestamp".into(), (timestamp,))
            .await
            .map_err(|e| NodeError::l1("evm_setNextBlockTimestamp", e))?;
        provider
            .raw_request::<_, serde_json::Value>("evm_mine".into(), ())
            .await
            .map_err(|e| NodeError::l1("evm_mine", e))?;
        Ok(())
    }

    /// Snapshots the chain (`evm_snapshot`); [`Self::revert`] goes back to it, which is how a
    /// test makes an L1 reorg: blocks after the snapshot vanish and others take their place.
    pub async fn snapshot(&self) -> Result<String, ToolError> {
        let id: serde_json::Value = provider(&self.url)?
            .raw_request("evm_snapshot".into(), ())
            .await
            .map_err(|e| NodeError::l1("evm_snapshot", e))?;
        Ok(id.as_str().map_or_else(|| id.to_string(), str::to_string))
    }

    /// Reverts the chain to snapshot `id` (`evm_revert`).
    pub async fn revert(&self, id: &str) -> Result<(), ToolError> {
        let reverted: bool = provider(&self.url)?
            .raw_request("evm_revert".into(), (id,))
            .await
            .map_err(|e| NodeError::l1("evm_revert", e))?;
        if !reverted {
            return Err(NodeError::l1("evm_revert", format!("no snapshot {id}")).into());
        }
        Ok(())
    }

    /// Stops anvil.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The test whitelist contract on an L1, driven by its owner.
#[derive(Debug, Clone)]
pub struct WhitelistStub {
    url: String,
    owner: Address,
    /// The contract's address.
    pub address: Address,
}

impl WhitelistStub {
    /// Deploys the contract on `anvil`: epochs of `epoch_secs` from `genesis` (unix seconds).
    pub async fn deploy(anvil: &Anvil, genesis: u64, epoch_secs: u64) -> Result<Self, ToolError> {
        let args = (U256::from(genesis), U256::from(epoch_secs)).abi_encode_params();
        let address = deploy(anvil, WHITELIST_STUB_BIN, &args).await?;
        Ok(Self {
            url: anvil.url.clone(),
            owner: anvil.owner,
            address,
        })
    }

    fn contract(
        &self,
    ) -> Result<WhitelistScheduleStub::WhitelistScheduleStubInstance<impl Provider>, ToolError>
    {
        let provider = provider(&self.url)?;
        Ok(WhitelistScheduleStub::new(self.address, provider))
    }

    /// Registers `operators` (proposer, sequencer: the proposer is the on-chain identity, the
    /// sequencer signs) and assigns `epochs` (epoch, proposer; `Address::ZERO`: none). Sends
    /// every transaction, then waits until all are mined (one or two blocks, not one each).
    pub async fn setup(
        &self,
        operators: &[(Address, Address)],
        epochs: &[(u64, Address)],
    ) -> Result<(), ToolError> {
        let contract = self.contract()?;
        let mut sent = Vec::new();
        for (proposer, sequencer) in operators {
            let call = contract.addOperator(*proposer, *sequencer).from(self.owner);
            sent.push(
                call.send()
                    .await
                    .map_err(|e| NodeError::l1("addOperator", e))?,
            );
        }
        for (epoch, proposer) in epochs {
            let call = contract
                .assignEpoch(U256::from(*epoch), *proposer)
                .from(self.owner);
            sent.push(
                call.send()
                    .await
                    .map_err(|e| NodeError::l1("assignEpoch", e))?,
            );
        }
        tokio::time::timeout(L1_WAIT, async {
            for pending in sent {
                pending
                    .watch()
                    .await
                    .map_err(|e| NodeError::l1("setup", e))?;
            }
            Ok(())
        })
        .await
        .map_err(|_| NodeError::l1("setup", "not mined in time"))?
    }

    /// The epoch of the L1 head, as the contract computes it.
    pub async fn current_epoch(&self) -> Result<u64, ToolError> {
        let epoch = self
            .contract()?
            .currentEpoch()
            .call()
            .await
            .map_err(|e| NodeError::l1("currentEpoch", e))?;
        Ok(u64::try_from(epoch).map_err(|e| NodeError::l1("currentEpoch", e))?)
    }
}

/// An HTTP provider for `url` with alloy's recommended fillers (gas, nonce, chain id), so
/// the owner's transactions need no more than `from`.
pub fn provider(url: &str) -> Result<impl Provider, ToolError> {
    let url = url
        .parse()
        .map_err(|e| ToolError::config("l1.rpc_url", format!("not a URL: {e}")))?;
    Ok(ProviderBuilder::new().connect_http(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executable(dir: &Path, rel: &str) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        path
    }

    #[test]
    fn anvil_is_found_without_anvil_bin_in_each_place() {
        let dir = tempfile::tempdir().unwrap();
        let missing_tools = dir.path().join("no-tools/anvil");
        // Installed by scripts/install-anvil.
        let tools = executable(dir.path(), "tools/anvil");
        assert_eq!(search_anvil(None, &tools, None, None), Ok(tools.clone()));
        // foundryup's place.
        let home = dir.path().join("home");
        let foundry = executable(&home, ".foundry/bin/anvil");
        assert_eq!(
            search_anvil(None, &missing_tools, Some(home.clone()), None),
            Ok(foundry)
        );
        // On PATH.
        let bin = executable(dir.path(), "bin/anvil");
        let path = std::env::join_paths([dir.path().join("empty"), dir.path().join("bin")]).ok();
        assert_eq!(search_anvil(None, &missing_tools, None, path), Ok(bin));
    }

    #[test]
    fn anvil_bin_wins_and_a_wrong_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let tools = executable(dir.path(), "tools/anvil");
        let chosen = executable(dir.path(), "chosen/anvil");
        assert_eq!(
            search_anvil(Some(chosen.clone()), &tools, None, None),
            Ok(chosen)
        );
        let wrong = dir.path().join("nope/anvil");
        let err = search_anvil(Some(wrong.clone()), &tools, None, None).unwrap_err();
        assert!(err.contains(&*wrong.to_string_lossy()), "{err}");
    }

    #[test]
    fn nowhere_says_how_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let err = search_anvil(
            None,
            &dir.path().join("x/anvil"),
            Some(dir.path().into()),
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("scripts/install-anvil") && err.contains("ANVIL_BIN"),
            "{err}"
        );
    }
}
