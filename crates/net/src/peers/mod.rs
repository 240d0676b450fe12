//! Peers: the peer manager (app scores, bans, inbound admission, dial targets), the app score
//! of one peer (§7.1), and the connection limits per IP and per peer id.

pub mod ip_limit;
pub(crate) mod manager;
mod score;
