//! What the node's ENR advertises to discovery: its address and ports, and whether discv5's
//! PONG votes may update them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::error::NetError;

/// What the node's ENR advertises (`sdk.network.enr`): the address and ports other nodes
/// dial. The node's own view of its addresses (the listen address) is not what a remote peer
/// can reach behind NAT or on a wildcard listen, hence these keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnrConfig {
    /// IPv4 address to advertise: the node's public address (`run --nat extip:IP` sets it).
    /// Unset: the listen IP when `listen_addr` names a specific one, else the source address
    /// of this host's route to the bootnodes (without bootnodes: its default route), then what
    /// discv5's PONG votes say. May not be `0.0.0.0`, nor loopback unless the
    /// node listens on loopback. Setting it turns [`Self::auto_update`] off.
    pub address: Option<Ipv4Addr>,
    /// IPv6 address to advertise (`run --nat extip:IPv6` sets it); unset as for
    /// [`Self::address`], for the IPv6 listen. Setting it turns [`Self::auto_update`] off.
    pub address6: Option<Ipv6Addr>,
    /// TCP port to advertise, when a NAT forwards another port to the listen port. Unset: the
    /// libp2p TCP listen port.
    pub tcp_port: Option<u16>,
    /// UDP port to advertise, when a NAT forwards another port to the discv5 port. Unset: the
    /// discv5 port.
    pub udp_port: Option<u16>,
    /// Whether discv5 may replace the advertised IP and UDP port with the one its peers
    /// report seeing in their PONGs (discv5's ENR auto-update: a node behind NAT learns its
    /// public address). Default true; off whenever [`Self::address`] or [`Self::address6`] is
    /// set. A vote for a loopback or unspecified address is never taken when the node listens
    /// on another address.
    pub auto_update: bool,
    /// How many peers must report the same address before [`Self::auto_update`] takes it.
    /// Default 3 (discv5's own default, 10, assumes thousands of nodes; a preconfirmation
    /// network has tens). At least 2.
    pub update_min_votes: usize,
}

impl Default for EnrConfig {
    fn default() -> Self {
        Self {
            address: None,
            address6: None,
            tcp_port: None,
            udp_port: None,
            auto_update: true,
            update_min_votes: 3,
        }
    }
}

impl EnrConfig {
    /// Whether discv5's PONG votes may update the ENR: [`Self::auto_update`], unless an
    /// address was given.
    pub fn votes_update(&self) -> bool {
        self.auto_update && self.address.is_none() && self.address6.is_none()
    }

    /// Refuses an advertised address nobody could dial, given the node listens on `listen`.
    pub fn validate(&self, listen: IpAddr) -> Result<(), NetError> {
        let configured = [self.address.map(IpAddr::V4), self.address6.map(IpAddr::V6)];
        for (key, ip) in ["enr.address", "enr.address6"].into_iter().zip(configured) {
            let Some(ip) = ip else { continue };
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(NetError::Config(format!(
                    "{key} {ip}: not an address another node can dial; give the node's public \
                     address"
                )));
            }
            if ip.is_loopback() && !listen.is_loopback() {
                return Err(NetError::Config(format!(
                    "{key} {ip} is a loopback address but the node listens on {listen}: no \
                     other host could reach it"
                )));
            }
        }
        if self.tcp_port == Some(0) || self.udp_port == Some(0) {
            return Err(NetError::Config(
                "enr.tcp_port and enr.udp_port cannot be 0 (unset them to advertise the \
                 listen ports)"
                    .into(),
            ));
        }
        if self.update_min_votes < 2 {
            return Err(NetError::Config(
                "enr.update_min_votes must be at least 2".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;

    #[test]
    fn enr_keys_are_read_and_checked() {
        let c: NetworkConfig = serde_json::from_str(
            r#"{"enr": {"address": "203.0.113.9", "address6": "2001:db8::9",
                "tcp_port": 30303, "udp_port": 30304}}"#,
        )
        .unwrap();
        assert_eq!(c.enr.address, Some(Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(c.enr.address6, Some("2001:db8::9".parse().unwrap()));
        assert_eq!((c.enr.tcp_port, c.enr.udp_port), (Some(30303), Some(30304)));
        c.validate().unwrap();
        assert!(
            !c.enr.votes_update(),
            "a configured address is never voted away"
        );
        let refused = |enr: EnrConfig, listen: &str| {
            NetworkConfig {
                enr,
                listen_addr: listen.parse().unwrap(),
                ..Default::default()
            }
            .validate()
            .map_err(|e| e.to_string())
        };
        let addr = |a: &str| EnrConfig {
            address: Some(a.parse().unwrap()),
            ..Default::default()
        };
        let err = refused(addr("0.0.0.0"), "/ip4/0.0.0.0/tcp/9222").unwrap_err();
        assert!(err.contains("enr.address 0.0.0.0"), "{err}");
        let err = refused(addr("127.0.0.1"), "/ip4/0.0.0.0/tcp/9222").unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let err = refused(
            EnrConfig {
                address6: Some(Ipv6Addr::LOCALHOST),
                ..Default::default()
            },
            "/ip6/::/tcp/9222",
        )
        .unwrap_err();
        assert!(err.contains("enr.address6 ::1"), "{err}");
        // A node listening on loopback may advertise loopback (tests, devnets).
        refused(addr("127.0.0.1"), "/ip4/127.0.0.1/tcp/0").unwrap();
        for enr in [
            EnrConfig {
                update_min_votes: 1,
                ..Default::default()
            },
            EnrConfig {
                tcp_port: Some(0),
                ..Default::default()
            },
        ] {
            assert!(refused(enr, "/ip4/0.0.0.0/tcp/9222").is_err());
        }
    }
}
