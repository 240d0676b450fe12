//! The testbed's private network: one Linux network namespace per node plus a "switch"
//! namespace holding two bridges, joined by veth pairs, built and torn down with iproute2.
//!
//! ```text
//!   switch namespace  pctb<pid>-sw
//!     br0 (data, no address)            br1 (management, 10.78.0.254 = the controller)
//!      │ d0  d1 …                         │ m0  m1 …
//!   ───┼─────────────────────────────────┼──────────
//!      │ eth0 10.77.0.(i+1), tbf-shaped   │ eth1 10.78.0.(i+1), unshaped
//!      │      2001:db8:77::(i+1)          │
//!   node namespace  pctb<pid>-n<i>: one `preconf-node run`
//! ```
//!
//! Gossip and req/resp use the data network only; each node's uplink (egress of its `eth0`) is
//! shaped with a token bucket filter. JSON-RPC and HTTP, which the controller uses to publish
//! and to observe, bind to the management network only, so measuring never takes a node's
//! shaped bandwidth. The data network is each node's "internet": it holds the node's default
//! routes (IPv4 and IPv6, `dev eth0`), as a host's public interface would, so a node listening
//! on `0.0.0.0`/`::` finds its data address as the source of its route out. Neither network
//! reaches anything else: the addresses exist only inside these namespaces and nothing joins
//! them to the host's interfaces.
//!
//! Every namespace is named `pctb<pid>-…` after the testbed process that made it. Dropping the
//! [`Network`] kills what still runs inside and deletes the namespaces (with them the veths and
//! bridges). [`clean_stale`] removes the leftovers of a run whose process is gone (killed with
//! SIGKILL, say).

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{debug, warn};

use crate::error::ToolError;

/// Prefix of every namespace a testbed creates; followed by the testbed's pid.
pub const NAMESPACE_PREFIX: &str = "pctb";

/// Where iproute2 keeps named network namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Most nodes: one /24 per network, minus the controller's address.
pub const MAX_NODES: usize = 64;

/// The controller's address on the management network (on `br1` of the switch namespace).
pub const CONTROLLER_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 254);

/// MAC of the controller's bridge (`br1`).
const CONTROLLER_MAC: &str = "02:4e:00:00:00:fe";

/// MAC of node `index`'s data interface (`eth0`).
fn data_mac(index: usize) -> String {
    format!("02:4d:00:00:00:{index:02x}")
}

/// MAC of node `index`'s management interface (`eth1`).
fn mgmt_mac(index: usize) -> String {
    format!("02:4e:00:00:00:{index:02x}")
}

/// One `ip -batch` line: a permanent neighbour entry.
fn neighbour(ip: impl Into<IpAddr>, mac: &str, dev: &str) -> String {
    let ip = ip.into();
    format!("neigh replace {ip} lladdr {mac} dev {dev} nud permanent")
}

/// Runs `lines` with `ip -n NS -batch -`.
fn ip_batch(ns: &str, lines: &[String]) -> Result<(), ToolError> {
    run("ip", &["-n", ns, "-batch", "-"], Some(&lines.join("\n")))
}

/// Longest time a packet may wait in a node's uplink queue before tbf drops it: a home
/// router's buffer of about 100 ms.
pub const UPLINK_QUEUE_MS: u32 = 100;

/// Address of node `index` on the data network (gossip, req/resp, discv5).
pub fn data_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, index as u8 + 1)
}

/// IPv6 address of node `index` on the data network (documentation prefix `2001:db8::/32`:
/// global unicast in form, as a public IPv6 address is, routed nowhere).
pub fn data_ip6(index: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, index as u16 + 1)
}

/// Address of node `index` on the management network (JSON-RPC, HTTP).
pub fn mgmt_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 78, 0, index as u8 + 1)
}

/// The namespaces, bridges and links of one testbed run; removed on drop.
#[derive(Debug)]
pub struct Network {
    tag: String,
    namespaces: Vec<String>,
}

impl Network {
    /// Builds the switch and one namespace per entry of `uplinks_mbit` (node `i`'s uplink
    /// rate). On error, what was built is removed before returning.
    pub fn create(uplinks_mbit: &[u32]) -> Result<Self, ToolError> {
        if uplinks_mbit.is_empty() || uplinks_mbit.len() > MAX_NODES {
            return Err(ToolError::Testbed(format!(
                "{} nodes; the testbed runs 1 to {MAX_NODES}",
                uplinks_mbit.len()
            )));
        }
        let mut network = Self {
            tag: format!("{NAMESPACE_PREFIX}{}", std::process::id()),
            namespaces: Vec::new(),
        };
        // Leftovers of an earlier process with our pid (pid reuse) go first.
        network.remove_named(&existing_namespaces_of(&network.tag));
        let sw = network.switch();
        network.add_namespace(&sw)?;
        for (bridge, address) in [("br0", None), ("br1", Some(CONTROLLER_IP))] {
            ip(&["-n", &sw, "link", "add", bridge, "type", "bridge"])?;
            if let Some(a) = address {
                ip(&["-n", &sw, "link", "set", bridge, "address", CONTROLLER_MAC])?;
                ip(&["-n", &sw, "addr", "add", &format!("{a}/24"), "dev", bridge])?;
            }
            ip(&["-n", &sw, "link", "set", bridge, "up"])?;
        }
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        for (index, &mbit) in uplinks_mbit.iter().enumerate() {
            let ns = network.node(index);
            network.add_namespace(&ns)?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            for (side, inner, bridge, addr, mac) in [
                (
                    format!("d{index}"),
                    "eth0",
                    "br0",
                    data_ip(index),
                    data_mac(index),
                ),
                (
                    format!("m{index}"),
                    "eth1",
                    "br1",
                    mgmt_ip(index),
                    mgmt_mac(index),
                ),
            ] {
                ip(&[
                    "-n", &sw, "link", "add", &side, "type", "veth", "peer", "name", inner,
                    "address", &mac, "netns", &ns,
                ])?;
                ip(&["-n", &sw, "link", "set", &side, "master", bridge, "up"])?;
                ip(&[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    inner,
                ])?;
                ip(&["-n", &ns, "link", "set", inner, "up"])?;
            }
            // IPv6 beside IPv4 on the data network (no duplicate address detection: the
            // addresses are distinct by construction), and the default routes out of it.
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/64", data_ip6(index)),
                "dev",
                "eth0",
                "nodad",
            ])?;
            ip(&["-n", &ns, "route", "add", "default", "dev", "eth0"])?;
            ip(&["-n", &ns, "-6", "route", "add", "default", "dev", "eth0"])?;
            shape(&ns, "eth0", mbit)?;
        }
        // Every address is known up front: permanent neighbour entries instead of ARP (and of
        // IPv6 neighbour discovery). With
        // dozens of namespaces, gossip bursts overflow the kernel's per-CPU backlog
        // (`net.core.netdev_max_backlog`) and the broadcast ARP requests dropped with them
        // left nodes unreachable ("No route to host") at 64 nodes.
        let n = uplinks_mbit.len();
        for index in 0..n {
            let mut lines: Vec<String> = (0..n)
                .filter(|&other| other != index)
                .flat_map(|other| {
                    [IpAddr::V4(data_ip(other)), IpAddr::V6(data_ip6(other))]
                        .map(|ip| neighbour(ip, &data_mac(other), "eth0"))
                })
                .collect();
            lines.push(neighbour(CONTROLLER_IP, CONTROLLER_MAC, "eth1"));
            ip_batch(&network.node(index), &lines)?;
        }
        let lines: Vec<String> = (0..n)
            .map(|index| neighbour(mgmt_ip(index), &mgmt_mac(index), "br1"))
            .collect();
        ip_batch(&sw, &lines)?;
        Ok(network)
    }

    /// The switch namespace's name.
    pub fn switch(&self) -> String {
        format!("{}-sw", self.tag)
    }

    /// Node `index`'s namespace name.
    pub fn node(&self, index: usize) -> String {
        format!("{}-n{index}", self.tag)
    }

    /// Moves the calling thread (only it) into the switch namespace, where the management
    /// network reaches every node. Threads it spawns afterwards start there too.
    pub fn enter_switch(&self) -> Result<(), ToolError> {
        let file = open_namespace(&self.switch())?;
        setns(&file, CloneFlags::CLONE_NEWNET)
            .map_err(|e| ToolError::Testbed(format!("setns into {}: {e}", self.switch())))
    }

    /// Node `index`'s namespace, opened: a process `setns`es into it.
    pub fn open_node(&self, index: usize) -> Result<File, ToolError> {
        open_namespace(&self.node(index))
    }

    /// Kills whatever still runs in the namespaces and deletes them. Idempotent.
    pub fn remove(&mut self) {
        let names = std::mem::take(&mut self.namespaces);
        self.remove_named(&names);
    }

    fn remove_named(&self, names: &[String]) {
        for name in names.iter().rev() {
            remove_namespace(name);
        }
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), ToolError> {
        ip(&["netns", "add", name])?;
        self.namespaces.push(name.to_string());
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The named network namespace `name`, opened.
fn open_namespace(name: &str) -> Result<File, ToolError> {
    let path = Path::new(NETNS_DIR).join(name);
    File::open(&path).map_err(|e| ToolError::io(&path, e))
}

/// Shapes the egress of `dev` in `ns` to `mbit` with a token bucket filter: bucket of 10 ms at
/// the rate (at least 16 KiB), queue of [`UPLINK_QUEUE_MS`].
fn shape(ns: &str, dev: &str, mbit: u32) -> Result<(), ToolError> {
    let burst = (u64::from(mbit) * 1_000_000 / 8 / 100).max(16 * 1024);
    tc(&[
        "-n",
        ns,
        "qdisc",
        "replace",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        &format!("{mbit}mbit"),
        "burst",
        &burst.to_string(),
        "latency",
        &format!("{UPLINK_QUEUE_MS}ms"),
    ])
}

/// Removes every testbed namespace whose process is gone; returns how many. Processes still
/// inside one (nodes of a testbed killed with SIGKILL) are killed first.
pub fn clean_stale() -> usize {
    let mut removed = 0;
    for name in all_testbed_namespaces() {
        let owner = name
            .strip_prefix(NAMESPACE_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        let alive =
            owner.is_some_and(|pid| pid == std::process::id() as i32 || is_testbed_process(pid));
        if !alive {
            warn!(namespace = %name, "removing a stale testbed namespace");
            remove_namespace(&name);
            removed += 1;
        }
    }
    removed
}

/// Whether `pid` runs `preconf-node` (a live testbed owns its namespaces).
fn is_testbed_process(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("preconf-node"))
}

/// Names of all testbed namespaces on this machine.
pub fn all_testbed_namespaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(NAMESPACE_PREFIX))
        .collect();
    names.sort();
    names
}

fn existing_namespaces_of(tag: &str) -> Vec<String> {
    let prefix = format!("{tag}-");
    all_testbed_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Kills the processes in `name` (SIGKILL: by now they had their SIGTERM) and deletes it.
fn remove_namespace(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    if let Err(e) = ip(&["netns", "del", name]) {
        warn!(namespace = name, error = %e, "cannot delete namespace");
    } else {
        debug!(namespace = name, "namespace deleted");
    }
}

/// Runs `ip ARGS`; its stderr becomes the error.
fn ip(args: &[&str]) -> Result<(), ToolError> {
    run("ip", args, None)
}

/// Runs `tc ARGS`.
fn tc(args: &[&str]) -> Result<(), ToolError> {
    run("tc", args, None)
}

/// Runs `program ARGS`, writing `input` to its stdin when given; its stderr becomes the error.
fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), ToolError> {
    use std::io::Write as _;
    use std::process::Stdio;
    let failed = |e: std::io::Error| {
        ToolError::Testbed(format!("{program}: {e} (the testbed needs iproute2)"))
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(failed)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(failed)?;
    }
    let out = child.wait_with_output().map_err(failed)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ToolError::Testbed(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Bytes sent (`tx`) and received (`rx`), and packets sent, on `dev` in the network namespace
/// of process `pid`, from `/proc/<pid>/net/dev`.
pub fn link_bytes(pid: u32, dev: &str) -> Option<LinkBytes> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    parse_net_dev(&text, dev)
}

/// What one interface counted, frames whole (Ethernet, IP and TCP headers included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkBytes {
    /// Bytes received.
    pub rx: u64,
    /// Bytes sent.
    pub tx: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

fn parse_net_dev(text: &str, dev: &str) -> Option<LinkBytes> {
    text.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != dev {
            return None;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        Some(LinkBytes {
            rx: *fields.first()?,
            tx: *fields.get(8)?,
            tx_packets: *fields.get(9)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_counters_are_read_by_interface() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  \
            eth0: 5000000    4000    0    0    0     0          0         0  7000000    5000    0    0    0     0       0          0\n";
        assert_eq!(
            parse_net_dev(text, "eth0"),
            Some(LinkBytes {
                rx: 5_000_000,
                tx: 7_000_000,
                tx_packets: 5000,
            })
        );
        assert_eq!(
            parse_net_dev(text, "lo"),
            Some(LinkBytes {
                rx: 100,
                tx: 100,
                tx_packets: 2
            })
        );
        assert_eq!(parse_net_dev(text, "eth1"), None);
    }

    #[test]
    fn addresses_are_private_and_distinct() {
        assert_eq!(data_ip(0), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(mgmt_ip(MAX_NODES - 1), Ipv4Addr::new(10, 78, 0, 64));
        assert!(data_ip(MAX_NODES - 1).is_private() && CONTROLLER_IP.is_private());
        assert_ne!(mgmt_ip(MAX_NODES - 1), CONTROLLER_IP);
        assert_eq!(data_mac(MAX_NODES - 1), "02:4d:00:00:00:3f");
        assert_ne!(mgmt_mac(0), data_mac(0));
        assert_eq!(
            neighbour(CONTROLLER_IP, CONTROLLER_MAC, "eth1"),
            "neigh replace 10.78.0.254 lladdr 02:4e:00:00:00:fe dev eth1 nud permanent"
        );
    }
}
