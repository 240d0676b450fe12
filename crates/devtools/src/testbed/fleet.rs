//! The node processes of a testbed: one `preconf-node run` per namespace, each with its own
//! data dir, config file, identity and log, stopped (SIGTERM, then SIGKILL) on drop.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use preconf_node_core::config::NodeConfig;
use preconf_node_core::logging::LogFormat;
use tracing::warn;

use super::hops::DELIVERY_LOG_TARGET;
use super::netns::{data_ip, mgmt_ip, Network};
use crate::error::ToolError;

/// libp2p TCP and discv5 UDP port of every node (each node has its own address): the
/// production default.
pub const P2P_PORT: u16 = preconfirmation_net::config::DEFAULT_P2P_PORT;
/// JSON-RPC port on the management network.
pub const RPC_PORT: u16 = 8545;
/// HTTP (`/metrics`, `/status`) port on the management network.
pub const HTTP_PORT: u16 = 8080;
/// How long a node gets to stop after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// One running node process.
#[derive(Debug)]
pub struct NodeProcess {
    /// Its index (namespace `…-n<index>`).
    pub index: usize,
    child: Child,
    log: PathBuf,
}

impl NodeProcess {
    /// Its pid (the node is started directly, so this is the node).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its JSON-RPC address on the management network.
    pub fn rpc_addr(&self) -> SocketAddr {
        SocketAddr::from((mgmt_ip(self.index), RPC_PORT))
    }

    /// Its log file (JSON lines: [`node_config`]).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(reason)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "node {} exited ({status}); last log lines:\n{}",
                self.index,
                log_tail(&self.log, 8)
            )),
            Ok(None) => None,
            Err(e) => Some(format!("node {}: {e}", self.index)),
        }
    }
}

/// In a forked child before exec: joins the network namespace `netns`, drops to
/// [`NODE_UID`]/[`NODE_GID`] with no supplementary groups, asks for SIGKILL when its parent
/// dies, and fails if that parent (`testbed_pid`) has already gone.
fn enter_unprivileged(netns: &File, testbed_pid: i32) -> std::io::Result<()> {
    let io = |e: nix::Error| std::io::Error::from_raw_os_error(e as i32);
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(io)?;
    nix::unistd::setgroups(&[]).map_err(io)?;
    let gid = nix::unistd::Gid::from_raw(NODE_GID);
    nix::unistd::setresgid(gid, gid, gid).map_err(io)?;
    let uid = nix::unistd::Uid::from_raw(NODE_UID);
    nix::unistd::setresuid(uid, uid, uid).map_err(io)?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io)?;
    if nix::unistd::getppid().as_raw() != testbed_pid {
        // ESRCH: no such process, the testbed (no allocation here, after fork).
        return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
    }
    Ok(())
}

/// The last `lines` lines of a log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The uid the testbed's nodes run as (`nobody`): root builds the namespaces, the nodes need
/// none of it.
pub const NODE_UID: u32 = 65534;
/// The gid the testbed's nodes run as (`nogroup`).
pub const NODE_GID: u32 = 65534;

/// The node processes; all stopped on drop.
#[derive(Debug, Default)]
pub struct Fleet {
    /// The running nodes, in start order.
    pub nodes: Vec<NodeProcess>,
}

impl Fleet {
    /// Starts node `index` in its namespace with `config` written next to its data, plus
    /// `extra` `--set KEY=VALUE` overrides.
    pub fn start(
        &mut self,
        network: &Network,
        index: usize,
        config: &NodeConfig,
        extra: &[String],
    ) -> Result<(), ToolError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| ToolError::io(dir, e))?;
        let config_path = dir.join("node.toml");
        let toml = toml::to_string(config)
            .map_err(|e| ToolError::config("testbed", format!("node config as TOML: {e}")))?;
        std::fs::write(&config_path, toml).map_err(|e| ToolError::io(&config_path, e))?;
        let log = dir.join("node.log");
        let log_file = File::create(&log).map_err(|e| ToolError::io(&log, e))?;
        let exe = std::env::current_exe().map_err(|e| ToolError::Testbed(e.to_string()))?;
        // The node owns its data dir and runs unprivileged, and dies with the testbed even
        // when the testbed is SIGKILLed (no cleanup of ours runs then).
        for path in [dir.as_path(), config_path.as_path()] {
            nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(NODE_UID)),
                Some(nix::unistd::Gid::from_raw(NODE_GID)),
            )
            .map_err(|e| ToolError::Testbed(format!("chown {}: {e}", path.display())))?;
        }
        // The node is started straight into its namespace, as nobody, with the parent-death
        // signal set *after* dropping root (a uid change clears it) and then a check that its
        // parent is still this testbed: a testbed killed while it starts a node cannot leave
        // that node running (`ip netns exec` + `setpriv` left a window where it could).
        let netns = network.open_node(index)?;
        let testbed_pid = std::process::id() as i32;
        let mut command = Command::new(exe);
        command.arg("run").arg("--config").arg(&config_path);
        // SAFETY: the closure runs in the forked child before exec and only makes system
        // calls (no allocation, no locks): setns, setgroups, setresgid, setresuid, prctl,
        // getppid. The only unsafe block outside tests, allowed here alone.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || enter_unprivileged(&netns, testbed_pid));
        }
        for set in extra {
            command.arg("--set").arg(set);
        }
        let child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| ToolError::Testbed(format!("starting node {index}: {e}")))?;
        self.nodes.push(NodeProcess { index, child, log });
        Ok(())
    }

    /// The first node that has exited, as an error.
    pub fn check_alive(&mut self) -> Result<(), ToolError> {
        for node in &mut self.nodes {
            if let Some(reason) = node.exited() {
                return Err(ToolError::Testbed(reason));
            }
        }
        Ok(())
    }

    /// SIGTERM to every node, then SIGKILL to those still running after [`STOP_GRACE`].
    pub fn stop(&mut self) {
        for node in &self.nodes {
            let _ = kill(Pid::from_raw(node.pid() as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        for node in &mut self.nodes {
            loop {
                match node.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        warn!(node = node.index, "node did not stop; killing it");
                        let _ = node.child.kill();
                        let _ = node.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.nodes.clear();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The config of node `index`: defaults, with its data dir, its addresses, the static
/// rotating schedule, `bootnodes` and JSON logs that name where each gossip message came
/// from. With `listen_any` the p2p addresses stay the defaults (`0.0.0.0`/`::`, port
/// [`P2P_PORT`], no ENR address): the node finds its own.
pub fn node_config(
    data_dir: PathBuf,
    index: usize,
    chain: preconfirmation_types::ChainSpec,
    lookahead: &p2p::RotatingLookahead,
    preconfers: Vec<preconfirmation_types::Address>,
    bootnodes: Vec<String>,
    listen_any: bool,
) -> NodeConfig {
    let mut c = NodeConfig {
        data_dir,
        ..NodeConfig::default()
    };
    c.http.addr = SocketAddr::from((mgmt_ip(index), HTTP_PORT));
    c.rpc.addr = SocketAddr::from((mgmt_ip(index), RPC_PORT));
    c.sdk.chain = chain;
    if !listen_any {
        c.sdk.network.listen_addr = format!("/ip4/{}/tcp/{P2P_PORT}", data_ip(index))
            .parse()
            .unwrap_or_else(|_| c.sdk.network.listen_addr.clone());
        c.sdk.network.discv5_port = Some(P2P_PORT);
    }
    c.sdk.network.discovery_enabled = true;
    c.sdk.network.bootnodes = bootnodes;
    c.lookahead.preconfers = preconfers;
    c.lookahead.slots_per_window = lookahead.slots_per_window();
    c.lookahead.genesis_timestamp = lookahead.genesis();
    c.lookahead.slot_duration_secs = lookahead.slot_duration();
    // JSON lines, with each first gossip delivery: the hops each message took (`hops`).
    c.log_format = LogFormat::Json;
    c.log_filter = format!("warn,preconf_node=info,p2p=info,{DELIVERY_LOG_TARGET}=debug");
    c
}
