//! Kubernetes NetworkPolicy semantics over rendered policies (serde_json values), for the tests
//! that judge the bundle's policies from the render alone (`offline_netpol.rs`,
//! `offline_journeys.rs`), and the pods they judge them with.
//!
//! A pod is isolated for ingress (egress) iff some policy in its namespace selects it and lists
//! Ingress (Egress) in its policyTypes; policyTypes left out means Ingress, plus Egress when the
//! policy has an egress section. A flow is allowed iff the source may send it (not isolated for
//! egress, or some selecting policy has a matching egress rule) and the destination may receive it
//! (likewise with ingress rules): policies add up, none subtracts. A rule matches when one of its
//! peers matches (no or empty `from`/`to`: every peer) and one of its ports matches (no or empty
//! `ports`: every port).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// Container ports: (name, number, protocol).
    pub ports: Vec<(String, u16, String)>,
    pub ip: Ipv4Addr,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

pub struct Cluster {
    pub policies: Vec<Value>,
    /// Labels of each namespace, beyond kubernetes.io/metadata.name (which every namespace has).
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// A label selector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) all
/// hold; `{}` selects everything.
pub fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if let Some(want) = selector.get("matchLabels").and_then(Value::as_object)
        && !want
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    {
        return false;
    }
    let exprs = selector.get("matchExpressions").and_then(Value::as_array);
    exprs.into_iter().flatten().all(|e| {
        let key = e["key"].as_str().expect("matchExpressions key");
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have = labels.get(key).map(String::as_str);
        match e["operator"].as_str().expect("matchExpressions operator") {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => panic!("unknown selector operator {other}"),
        }
    })
}

fn in_cidr(ip: Ipv4Addr, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').expect("a CIDR has a prefix length");
    let Ok(net) = net.parse::<Ipv4Addr>() else {
        return false; // an IPv6 block never holds an IPv4 pod address
    };
    let len: u32 = len.parse().expect("prefix length");
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net) & mask
}

impl Cluster {
    pub fn new(policies: Vec<Value>) -> Self {
        Cluster {
            policies,
            namespace_labels: BTreeMap::new(),
        }
    }

    fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        let mut labels = self.namespace_labels.get(ns).cloned().unwrap_or_default();
        labels.insert("kubernetes.io/metadata.name".into(), ns.into());
        labels
    }

    /// A `from`/`to` peer of a policy in namespace `policy_ns` matches `pod`.
    fn peer_matches(&self, peer: &Value, policy_ns: &str, pod: &Pod) -> bool {
        if let Some(block) = peer.get("ipBlock") {
            let except = block["except"].as_array().into_iter().flatten();
            return in_cidr(pod.ip, block["cidr"].as_str().unwrap())
                && !except
                    .into_iter()
                    .any(|c| in_cidr(pod.ip, c.as_str().unwrap()));
        }
        let ns_ok = match peer.get("namespaceSelector") {
            Some(sel) => selects(sel, &self.namespace_labels(&pod.namespace)),
            // Without a namespaceSelector, a podSelector means the policy's own namespace.
            None => pod.namespace == policy_ns,
        };
        let pod_ok = peer
            .get("podSelector")
            .is_none_or(|sel| selects(sel, &pod.labels));
        ns_ok && pod_ok
    }

    /// One NetworkPolicyPort admits `port`/`protocol` on `dest` (named ports are looked up
    /// among dest's container ports).
    fn port_matches(p: &Value, dest: &Pod, port: u16, protocol: &str) -> bool {
        if p["protocol"].as_str().unwrap_or("TCP") != protocol {
            return false;
        }
        match &p["port"] {
            Value::Null => true,
            Value::Number(n) => {
                let lo = n.as_u64().unwrap();
                let hi = p["endPort"].as_u64().unwrap_or(lo);
                (lo..=hi).contains(&u64::from(port))
            }
            Value::String(name) => dest
                .ports
                .iter()
                .any(|(n, num, proto)| n == name && *num == port && proto == protocol),
            other => panic!("bad port {other}"),
        }
    }

    fn policy_types(policy: &Value) -> Vec<Direction> {
        match policy["spec"]["policyTypes"].as_array() {
            Some(types) => types
                .iter()
                .map(|t| match t.as_str().unwrap() {
                    "Ingress" => Direction::Ingress,
                    "Egress" => Direction::Egress,
                    other => panic!("unknown policyType {other}"),
                })
                .collect(),
            None if policy["spec"].get("egress").is_some() => {
                vec![Direction::Ingress, Direction::Egress]
            }
            None => vec![Direction::Ingress],
        }
    }

    /// Policies that select `pod` for `direction`.
    fn selecting(&self, pod: &Pod, direction: Direction) -> Vec<&Value> {
        self.policies
            .iter()
            .filter(|p| {
                p["metadata"]["namespace"].as_str() == Some(pod.namespace.as_str())
                    && selects(&p["spec"]["podSelector"], &pod.labels)
                    && Self::policy_types(p).contains(&direction)
            })
            .collect()
    }

    /// `subject` (the selected pod) may exchange `port`/`protocol` with `peer` in `direction`.
    fn admits(
        &self,
        subject: &Pod,
        peer: &Pod,
        dest: &Pod,
        port: u16,
        protocol: &str,
        direction: Direction,
    ) -> bool {
        let (rules_key, peers_key) = match direction {
            Direction::Ingress => ("ingress", "from"),
            Direction::Egress => ("egress", "to"),
        };
        let policies = self.selecting(subject, direction);
        if policies.is_empty() {
            return true; // not isolated
        }
        policies.iter().any(|policy| {
            let ns = policy["metadata"]["namespace"].as_str().unwrap();
            let rules = policy["spec"][rules_key].as_array().into_iter().flatten();
            rules.into_iter().any(|rule| {
                let peers = rule[peers_key].as_array().filter(|a| !a.is_empty());
                let peer_ok =
                    peers.is_none_or(|ps| ps.iter().any(|p| self.peer_matches(p, ns, peer)));
                let ports = rule["ports"].as_array().filter(|a| !a.is_empty());
                let port_ok = ports.is_none_or(|ps| {
                    ps.iter()
                        .any(|p| Self::port_matches(p, dest, port, protocol))
                });
                peer_ok && port_ok
            })
        })
    }

    /// Whether a connection from `src` to `dest` on `port`/`protocol` is allowed.
    pub fn allows(&self, src: &Pod, dest: &Pod, port: u16, protocol: &str) -> bool {
        self.verdict(src, dest, port, protocol).is_ok()
    }

    /// Allowed, or which end blocks it and by which policies: `src`'s egress or `dest`'s ingress.
    ///
    /// # Errors
    /// The blocking end, named.
    pub fn verdict(&self, src: &Pod, dest: &Pod, port: u16, protocol: &str) -> Result<(), String> {
        let names = |pod: &Pod, direction| {
            self.selecting(pod, direction)
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap_or("?").to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.admits(src, dest, dest, port, protocol, Direction::Egress) {
            return Err(format!(
                "{}'s egress (policies {}) has no rule for {}/{}:{port}",
                src.name,
                names(src, Direction::Egress),
                dest.namespace,
                dest.name
            ));
        }
        if !self.admits(dest, src, dest, port, protocol, Direction::Ingress) {
            return Err(format!(
                "{}'s ingress in {} (policies {}) admits no {}/{} on {port}",
                dest.name,
                dest.namespace,
                names(dest, Direction::Ingress),
                src.namespace,
                src.name
            ));
        }
        Ok(())
    }
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A synthetic pod; each name gets its own address in 10.244.0.0/16.
pub fn pod(name: &str, ns: &str, label_pairs: &[(&str, &str)], ports: &[(&str, u16)]) -> Pod {
    let n = name
        .bytes()
        .fold(7u16, |h, b| h.wrapping_mul(31).wrapping_add(u16::from(b)));
    let [hi, lo] = n.to_be_bytes();
    Pod {
        name: name.into(),
        namespace: ns.into(),
        labels: labels(label_pairs),
        ports: ports
            .iter()
            .map(|(n, p)| ((*n).to_owned(), *p, "TCP".to_owned()))
            .collect(),
        ip: Ipv4Addr::new(10, 244, hi, lo),
    }
}

/// The pod a pod template would run as `name` in `ns`: the template's labels plus `extra`, its
/// containers' declared ports.
pub fn template_pod(name: &str, ns: &str, template: &Value, extra: &[(&str, &str)]) -> Pod {
    let mut p = pod(name, ns, &[], &[]);
    for (k, v) in template["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        p.labels.insert(k.clone(), v.as_str().unwrap().to_owned());
    }
    for (k, v) in extra {
        p.labels.insert((*k).to_owned(), (*v).to_owned());
    }
    for c in template["spec"]["containers"].as_array().unwrap() {
        for port in c["ports"].as_array().into_iter().flatten() {
            p.ports.push((
                port["name"].as_str().unwrap_or("").to_owned(),
                u16::try_from(port["containerPort"].as_u64().unwrap()).unwrap(),
                port["protocol"].as_str().unwrap_or("TCP").to_owned(),
            ));
        }
    }
    p
}
