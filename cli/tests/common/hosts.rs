//! Hosts for tests of several organisations: each a Linux network namespace with an address of
//! its own on one virtual LAN (a bridge in a switch namespace), as four machines would be; or,
//! where the test cannot make namespaces (not root, no `ip`), loopback ports of this machine.
//! Namespaces and their links are removed when the value is dropped, processes in them first.

use std::process::{Command, Stdio};

/// Where the hosts live.
pub struct Hosts {
    /// Namespace names, one per host, then the client's; empty on loopback.
    namespaces: Vec<String>,
    /// The switch namespace holding the bridge.
    switch: Option<String>,
    /// Host addresses (IPv4).
    addresses: Vec<String>,
    /// Port pairs (gRPC, p2p) per host: on loopback each host has its own.
    ports: Vec<(u16, u16)>,
}

/// Runs `ip` with `args`; true when it succeeded.
fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Hosts {
    /// `n` hosts and a client host: namespaces at 10.79.T.11.. (T from the process id) when
    /// `QUORATE_TEST_NETNS` is not `0` and namespaces can be made, else loopback.
    pub fn new(n: usize) -> Self {
        let wanted = std::env::var("QUORATE_TEST_NETNS").map_or(true, |v| v != "0");
        if wanted {
            if let Some(h) = Self::namespaces(n) {
                return h;
            }
            println!("hosts: no network namespaces here (needs root and iproute2): loopback");
        }
        Self {
            namespaces: Vec::new(),
            switch: None,
            addresses: vec!["127.0.0.1".into(); n],
            ports: (0..n)
                .map(|_| super::cluster::Cluster::free_ports())
                .collect(),
        }
    }

    fn namespaces(n: usize) -> Option<Self> {
        let tag = format!("qt{}", std::process::id() % 100_000);
        let net = std::process::id() % 200 + 20;
        let switch = format!("{tag}-sw");
        if !ip(&["netns", "add", &switch]) {
            return None;
        }
        let mut hosts = Self {
            namespaces: Vec::new(),
            switch: Some(switch.clone()),
            addresses: Vec::new(),
            ports: vec![(7050, 7051); n],
        };
        let ok = ip(&["netns", "exec", &switch, "ip", "link", "set", "lo", "up"])
            && ip(&[
                "netns", "exec", &switch, "ip", "link", "add", "br0", "type", "bridge",
            ])
            && ip(&["netns", "exec", &switch, "ip", "link", "set", "br0", "up"]);
        if !ok {
            return None;
        }
        for i in 0..=n {
            let ns = format!("{tag}-{i}");
            let link = format!("{tag}v{i}");
            let peer = format!("{link}b");
            let address = format!("10.79.{net}.{}", if i == n { 100 } else { 11 + i });
            hosts.namespaces.push(ns.clone());
            let ok = ip(&["netns", "add", &ns])
                && ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer])
                && ip(&["link", "set", &link, "netns", &ns])
                && ip(&["link", "set", &peer, "netns", &switch])
                && ip(&[
                    "netns", "exec", &switch, "ip", "link", "set", &peer, "master", "br0", "up",
                ])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])
                && ip(&[
                    "netns",
                    "exec",
                    &ns,
                    "ip",
                    "addr",
                    "add",
                    &format!("{address}/24"),
                    "dev",
                    &link,
                ])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", &link, "up"]);
            if !ok {
                return None; // Drop removes what was made.
            }
            if i < n {
                hosts.addresses.push(address);
            }
        }
        println!(
            "hosts: {n} network namespaces {tag}-0..{} on 10.79.{net}.0/24, client {tag}-{n}",
            n - 1
        );
        Some(hosts)
    }

    /// Whether the hosts are network namespaces.
    pub fn isolated(&self) -> bool {
        !self.namespaces.is_empty()
    }

    /// `quorate` run on host `i` (`None`: the client host).
    pub fn quorate(&self, host: Option<usize>) -> Command {
        match self.namespaces.is_empty() {
            true => Command::new(super::bin()),
            false => {
                let ns = &self.namespaces[host.unwrap_or(self.namespaces.len() - 1)];
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(super::bin());
                c
            }
        }
    }

    /// Host `i`'s address.
    pub fn address(&self, i: usize) -> &str {
        &self.addresses[i]
    }

    /// Host `i`'s gRPC address (`ADDR:PORT`).
    pub fn grpc(&self, i: usize) -> String {
        format!("{}:{}", self.addresses[i], self.ports[i].0)
    }

    /// Host `i`'s gRPC URL.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.grpc(i))
    }

    /// Host `i`'s p2p multiaddr (without the peer id).
    pub fn p2p(&self, i: usize) -> String {
        format!("/ip4/{}/tcp/{}", self.addresses[i], self.ports[i].1)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            // `ip netns pids` lists what still runs there; the test's own guards killed its
            // processes first, this catches any left.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        }
        for ns in self.namespaces.iter().chain(self.switch.iter()) {
            ip(&["netns", "del", ns]);
        }
    }
}
