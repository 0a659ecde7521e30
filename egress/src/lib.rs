//! The address policy for every outbound HTTP connection Anchord makes:
//! webhooks (receivers a bank user chose), the verifier's online checks of
//! endpoints a proof bundle names (`anchord verify --allow-bundle-endpoints`),
//! and the endpoints operators configure (judicial gateways and EVM nodes for
//! the relay, the TSA and witnesses for the batcher, chain endpoints of a
//! court's trust policy).
//!
//! Two ways to build a [`Policy`]:
//! - [`Policy::new`] for destinations someone else chose: public addresses
//!   only, plus an explicit allow-list (a configuration key such as
//!   `workflow.webhook_allow`, named in every refusal through
//!   [`Policy::hint`]);
//! - [`Policy::pinned`] for destinations the operator configured: each
//!   configured endpoint's host is allowed **at its port** (the URL's port,
//!   or its scheme's default) whatever it resolves to (an on-premise gateway
//!   on `10.x` or loopback is normal); the same host at any other port is
//!   refused (a pinned `http://10.0.0.5:8080` never opens `10.0.0.5:22`),
//!   every other non-public address is refused, and the metadata addresses
//!   stay refused even for a configured host. Redirects are never followed,
//!   so a configured endpoint cannot send the client elsewhere.
//!   [`Policy::pinned_client`] builds the client for such endpoints in one
//!   call (the relay's targets, the batcher's witnesses and TSA, the
//!   verifier's trust-policy endpoints, `anchord trust export`).
//!
//! An address is refused when it is not a public unicast address: loopback,
//! private (RFC 1918, IPv6 ULA), link-local, shared address space (CGNAT,
//! RFC 6598), multicast, unspecified, broadcast, documentation, benchmarking,
//! reserved and IETF protocol ranges, and the cloud metadata addresses
//! (169.254.169.254, 169.254.170.2, 100.100.100.200, fd00:ec2::254) even when
//! an allow-list entry covers them. IPv4 inside IPv6 (IPv4-mapped,
//! IPv4-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by the
//! embedded IPv4 address; Teredo is refused.
//!
//! The check happens **after DNS resolution and on the addresses the
//! connection uses**: [`Policy::client`] builds a `reqwest` client whose DNS
//! resolver ([`GuardedResolver`]) returns only permitted addresses (so a name
//! cannot resolve to a public address at check time and to `127.0.0.1` at
//! connect time), whose connector checks every connection's destination
//! (host and port, IP literals included, which skip DNS) before it is opened
//! ([`Policy::check_destination`]), that never follows redirects and ignores
//! environment proxies. [`Policy::check_url`] runs the same checks on a URL
//! before a request (and, with `resolve`, the DNS look-up too), for a clear
//! refusal before anything is sent.
//!
//! `workflow.webhook_allow` lists exceptions for on-premise receivers: CIDRs
//! (`10.20.0.0/16`), single addresses (`127.0.0.1`) or exact host names
//! (`hooks.bank.internal`, whatever they resolve to, metadata excepted).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why a destination was refused (found in a `reqwest` error's source chain
/// by [`refusal_in`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The refusal inside an error's source chain, if the policy caused it.
pub fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

const METADATA: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(a, b, c, d), len).unwrap_or_default()
}

fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new(Ipv6Addr::new(a, b, c, d, e, f, g, h), len).unwrap_or_default()
}

/// Why `ip` is not a public unicast address (IANA special-purpose
/// registries), or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    if METADATA.contains(&ip) {
        return Some("a cloud metadata address");
    }
    match ip {
        IpAddr::V4(a) => non_public_v4(a),
        IpAddr::V6(a) => non_public_v6(a),
    }
}

fn non_public_v4(a: Ipv4Addr) -> Option<&'static str> {
    if METADATA.contains(&IpAddr::V4(a)) {
        return Some("a cloud metadata address");
    }
    let table: [(Ipv4Net, &'static str); 17] = [
        (
            v4(0, 0, 0, 0, 8),
            "unspecified (\"this network\", 0.0.0.0/8)",
        ),
        (v4(10, 0, 0, 0, 8), "private (RFC 1918)"),
        (
            v4(100, 64, 0, 0, 10),
            "shared address space (CGNAT, RFC 6598)",
        ),
        (v4(127, 0, 0, 0, 8), "loopback"),
        (v4(169, 254, 0, 0, 16), "link-local"),
        (v4(172, 16, 0, 0, 12), "private (RFC 1918)"),
        (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
        (v4(192, 0, 2, 0, 24), "documentation (TEST-NET-1)"),
        (v4(192, 31, 196, 0, 24), "AS112"),
        (v4(192, 52, 193, 0, 24), "AMT"),
        (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
        (v4(192, 168, 0, 0, 16), "private (RFC 1918)"),
        (v4(198, 18, 0, 0, 15), "benchmarking"),
        (v4(198, 51, 100, 0, 24), "documentation (TEST-NET-2)"),
        (v4(203, 0, 113, 0, 24), "documentation (TEST-NET-3)"),
        (v4(224, 0, 0, 0, 4), "multicast"),
        (v4(240, 0, 0, 0, 4), "reserved (and broadcast)"),
    ];
    table
        .iter()
        .find(|(net, _)| net.contains(&a))
        .map(|(_, why)| *why)
}

/// The IPv4 address carried inside an IPv6 one, for the forms that route to
/// it: IPv4-mapped, IPv4-compatible, NAT64 (well-known prefix), 6to4.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

fn non_public_v6(a: Ipv6Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if a.is_loopback() {
        return Some("loopback");
    }
    if let Some(inner) = embedded_v4(a) {
        return non_public_v4(inner);
    }
    let table: [(Ipv6Net, &'static str); 11] = [
        (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), "IPv4-compatible"),
        (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "local-use NAT64"),
        (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
        (
            v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
            "IETF protocol assignments (Teredo, ...)",
        ),
        (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
        (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
        (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), "segment routing"),
        (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local (ULA)"),
        (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
        (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
        (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
    ];
    table
        .iter()
        .find(|(net, _)| net.contains(&a))
        .map(|(_, why)| *why)
}

/// The policy: refuse every non-public address except what the allow-list
/// names.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
    /// How long a DNS look-up may take.
    resolve_timeout: Duration,
    /// What an operator sets to admit an address (named in refusals).
    hint: String,
    /// The configured endpoints of a pinned policy: host (lower-case name or
    /// IP literal) and port.
    pins: Vec<Pin>,
}

/// One configured endpoint of a pinned policy.
#[derive(Clone, Debug)]
struct Pin {
    /// Lower-case host name, or the IP literal as written (no brackets).
    host: String,
    /// The host as an address, when it is an IP literal.
    ip: Option<IpAddr>,
    port: u16,
}

/// The error type of `reqwest`'s connector services.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn normal_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

impl Policy {
    /// Parse the allow-list: CIDRs, addresses or host names. Errors name
    /// the entry at fault.
    pub fn new(allow: &[String]) -> Result<Policy, String> {
        let mut p = Policy {
            resolve_timeout: Duration::from_secs(2),
            hint: "an allow-list entry".into(),
            ..Policy::default()
        };
        for e in allow {
            let e = e.trim();
            if let Ok(net) = e.parse::<IpNet>() {
                p.nets.push(net.trunc());
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                p.nets.push(IpNet::from(ip));
            } else if let h = e.strip_suffix('.').unwrap_or(e)
                && !h.is_empty()
                && h.len() <= 253
                && h.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
            {
                p.hosts.push(normal_host(e));
            } else {
                return Err(format!(
                    "{e:?} is neither a CIDR, an IP address nor a host name"
                ));
            }
        }
        Ok(p)
    }

    /// A policy for endpoints the operator configured: the host of each of
    /// `urls` (a name or an IP literal) is allowed at that URL's port (its
    /// scheme's default when it names none) and at no other port; `extra`
    /// as in [`Policy::new`]. Errors name a URL that does not parse, has no
    /// host or is not `http`/`https`.
    pub fn pinned<S: AsRef<str>>(urls: &[S], extra: &[String]) -> Result<Policy, String> {
        let mut p = Policy::new(extra)?;
        for u in urls {
            let u = u.as_ref();
            let parsed = reqwest::Url::parse(u).map_err(|e| format!("{u:?} is not a URL: {e}"))?;
            if parsed.scheme() != "http" && parsed.scheme() != "https" {
                return Err(format!("{u:?} is not an http or https URL"));
            }
            let host = parsed
                .host_str()
                .ok_or_else(|| format!("{u:?} has no host"))?;
            let port = parsed
                .port_or_known_default()
                .ok_or_else(|| format!("{u:?} has no port"))?;
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let ip = bare.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
            p.pins.push(Pin {
                host: normal_host(bare),
                ip,
                port,
            });
        }
        Ok(p)
    }

    /// The `reqwest` client for endpoints the operator configured
    /// ([`Policy::pinned`] over `urls`, refusals naming `hint`, the
    /// configuration key to change): the one way every configured endpoint's
    /// client is built. Errors name the URL or the client setting at fault.
    pub fn pinned_client<S: AsRef<str>>(
        urls: &[S],
        hint: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<reqwest::Client, String> {
        let policy = Arc::new(Policy::pinned(urls, &[])?.hint(hint));
        policy
            .client(connect_timeout, timeout)
            .map_err(|e| format!("HTTP client: {e}"))
    }

    /// Name what an operator sets to admit a refused address (for example
    /// `"workflow.webhook_allow"`); it ends every refusal's message.
    pub fn hint(mut self, key: &str) -> Policy {
        self.hint = key.to_owned();
        self
    }

    /// Whether the connection may go to `ip` (reached through `host`, when
    /// by name).
    pub fn permit(&self, ip: IpAddr, host: Option<&str>) -> Result<(), Refused> {
        let ip = ip.to_canonical();
        if METADATA.contains(&ip) {
            return Err(Refused(format!("{ip} is a cloud metadata address")));
        }
        if host.is_some_and(|h| {
            let h = normal_host(h);
            self.hosts.contains(&h) || self.pins.iter().any(|p| p.ip.is_none() && p.host == h)
        }) || self.nets.iter().any(|n| n.contains(&ip))
        {
            return Ok(());
        }
        match non_public(ip) {
            Some(why) => Err(Refused(format!(
                "{ip} is not a public address ({why}); list it in {} to allow it",
                self.hint
            ))),
            None => Ok(()),
        }
    }

    /// Whether a connection may be opened to `host` (a name, or an IP literal
    /// with or without brackets) at `port`. A pinned host is allowed at its
    /// configured ports only, and refused at any other; an IP literal that
    /// is not pinned must be permitted ([`Policy::permit`]); a name that is
    /// not pinned is left to the resolver ([`GuardedResolver`]), which
    /// checks every address it resolves to.
    pub fn check_destination(&self, host: &str, port: u16) -> Result<(), Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = bare.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        let name = normal_host(bare);
        let pinned: Vec<u16> = self
            .pins
            .iter()
            .filter(|p| match (ip, p.ip) {
                (Some(a), Some(b)) => a == b,
                (None, None) => p.host == name,
                _ => false,
            })
            .map(|p| p.port)
            .collect();
        if !pinned.is_empty() && !pinned.contains(&port) {
            let ports: Vec<String> = pinned.iter().map(u16::to_string).collect();
            return Err(Refused(format!(
                "{bare} port {port} is not a configured endpoint ({bare} is configured at port {}); \
                 change {} to reach it",
                ports.join(", "),
                self.hint
            )));
        }
        match ip {
            Some(ip) if pinned.is_empty() => self.permit(ip, None),
            Some(ip) if METADATA.contains(&ip) => {
                Err(Refused(format!("{ip} is a cloud metadata address")))
            }
            _ => Ok(()),
        }
    }

    /// Resolve `host` and keep the permitted addresses (an error when none
    /// is). `strict`: refuse when any address is not permitted (registration:
    /// a name that also points inside is refused outright).
    pub async fn resolve(&self, host: &str, strict: bool) -> Result<Vec<SocketAddr>, Refused> {
        let found = tokio::time::timeout(self.resolve_timeout, tokio::net::lookup_host((host, 0)))
            .await
            .map_err(|_| Refused(format!("{host}: DNS look-up timed out")))?
            .map_err(|e| Refused(format!("{host} does not resolve: {e}")))?;
        let mut ok = Vec::new();
        let mut refused = None;
        for a in found {
            match self.permit(a.ip(), Some(host)) {
                Ok(()) => ok.push(a),
                Err(r) => {
                    if strict {
                        return Err(Refused(format!("{host} resolves to {r}")));
                    }
                    refused.get_or_insert(r);
                }
            }
        }
        if ok.is_empty() {
            return Err(match refused {
                Some(r) => Refused(format!("{host} resolves to {r}")),
                None => Refused(format!("{host} resolves to no address")),
            });
        }
        Ok(ok)
    }

    /// Check a URL: `http`/`https`, no credentials, a host; an IP literal
    /// must be permitted. With `resolve`, a host name must resolve, and only
    /// to permitted addresses (registration); without, names are left to
    /// [`GuardedResolver`] at connect time (delivery).
    pub async fn check_url(&self, url: &str, resolve: bool) -> Result<reqwest::Url, Refused> {
        let u = reqwest::Url::parse(url).map_err(|e| Refused(format!("not a URL: {e}")))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(Refused("only http and https URLs".into()));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(Refused(
                "no credentials in the URL (the signature authenticates deliveries)".into(),
            ));
        }
        let host = u
            .host_str()
            .ok_or_else(|| Refused("the URL has no host".into()))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = u
            .port_or_known_default()
            .ok_or_else(|| Refused("the URL has no port".into()))?;
        self.check_destination(bare, port)?;
        if resolve && bare.parse::<IpAddr>().is_err() {
            self.resolve(bare, true).await?;
        }
        Ok(u)
    }

    /// A client that connects only to permitted destinations: every
    /// connection's host and port checked before it is opened
    /// ([`Policy::check_destination`], through [`DestinationGate`]), a
    /// filtering DNS resolver, no redirects, no proxies, the given timeouts.
    /// Callers may still run [`Policy::check_url`] first, for a refusal
    /// before the request is built.
    pub fn client(
        self: &Arc<Self>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: self.clone(),
            }))
            .connector_layer(DestinationGateLayer {
                policy: self.clone(),
            })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .build()
    }
}

/// The destination of one connection `reqwest` is about to open, read from
/// its connector request. `reqwest` passes connectors an opaque type
/// (`Unnameable`, wrapping the request's `http::Uri`) whose only window is
/// its `Debug` form, `Unnameable(<uri>)`; anything else is refused (fail
/// closed), so a change of that form in a `reqwest` upgrade stops every
/// connection and fails the tests below instead of letting one through.
fn destination_of(request: &dyn std::fmt::Debug) -> Result<(String, u16), Refused> {
    let text = format!("{request:?}");
    let unreadable = || {
        Refused(format!(
            "cannot read the destination of an outbound connection ({text:?}); refused"
        ))
    };
    let uri = text
        .strip_prefix("Unnameable(")
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(unreadable)?;
    let url = reqwest::Url::parse(uri).map_err(|_| unreadable())?;
    let host = url.host_str().ok_or_else(unreadable)?.to_owned();
    let port = url.port_or_known_default().ok_or_else(unreadable)?;
    Ok((host, port))
}

/// A `tower` layer for `reqwest`'s connector: [`DestinationGate`].
#[derive(Clone, Debug)]
pub struct DestinationGateLayer {
    policy: Arc<Policy>,
}

impl<S> tower::Layer<S> for DestinationGateLayer {
    type Service = DestinationGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DestinationGate {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// Checks every connection's destination (host and port) with
/// [`Policy::check_destination`] before the inner connector opens it.
#[derive(Clone, Debug)]
pub struct DestinationGate<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S, R> tower::Service<R> for DestinationGate<S>
where
    S: tower::Service<R>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    R: std::fmt::Debug,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let checked = destination_of(&request)
            .and_then(|(host, port)| self.policy.check_destination(&host, port));
        match checked {
            Ok(()) => {
                let fut = self.inner.call(request);
                Box::pin(async move { fut.await.map_err(Into::into) })
            }
            Err(refused) => Box::pin(async move { Err(Box::new(refused) as BoxError) }),
        }
    }
}

/// A `reqwest` DNS resolver that returns only the addresses the policy
/// permits: the addresses checked are the addresses connected to.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host, false).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: &Policy, ip: &str) -> bool {
        p.permit(ip.parse().unwrap(), None).is_err()
    }

    #[test]
    fn every_special_range_is_refused_and_public_addresses_pass() {
        let p = Policy::new(&[]).unwrap();
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(refused(&p, ip), "{ip} must be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!refused(&p, ip), "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_ranges_but_never_metadata() {
        let p = Policy::new(&[
            "127.0.0.1".into(),
            "10.0.0.0/8".into(),
            "169.254.0.0/16".into(),
            "fd00::/8".into(),
            "Hooks.Bank.Internal.".into(),
        ])
        .unwrap();
        assert!(!refused(&p, "127.0.0.1"));
        assert!(!refused(&p, "::ffff:127.0.0.1"));
        assert!(refused(&p, "127.0.0.2"));
        assert!(!refused(&p, "10.9.9.9"));
        assert!(refused(&p, "169.254.169.254"));
        assert!(refused(&p, "fd00:ec2::254"));
        assert!(!refused(&p, "169.254.1.1"));
        let ip = "192.168.0.5".parse().unwrap();
        assert!(p.permit(ip, Some("hooks.bank.internal")).is_ok());
        assert!(p.permit(ip, Some("other.internal")).is_err());
        assert!(Policy::new(&["not a host!".into()]).is_err());
        assert!(Policy::new(&["10.0.0.0/33".into()]).is_err());
    }

    #[test]
    fn pinned_policies_allow_the_configured_hosts_and_nothing_else_inside() {
        let p = Policy::pinned(
            &[
                "http://127.0.0.1:8545",
                "https://gw.court.internal/v1",
                "http://[fd00::7]:80",
            ],
            &[],
        )
        .unwrap()
        .hint("relay.egress_allow");
        let dest = |h: &str, port: u16| p.check_destination(h, port);
        assert!(dest("127.0.0.1", 8545).is_ok());
        assert!(dest("[fd00::7]", 80).is_ok());
        assert!(dest("fd00::7", 80).is_ok());
        assert!(
            dest("127.0.0.2", 8545).is_err(),
            "only the configured address"
        );
        assert!(dest("10.0.0.1", 80).is_err());
        assert!(dest("169.254.169.254", 80).is_err());
        assert!(
            dest("8.8.8.8", 443).is_ok(),
            "public addresses stay allowed"
        );
        let inside = "10.1.1.1".parse().unwrap();
        assert!(p.permit(inside, Some("gw.court.internal")).is_ok());
        let meta = "169.254.169.254".parse().unwrap();
        assert!(p.permit(meta, Some("gw.court.internal")).is_err());
        let why = p.permit("192.168.1.1".parse().unwrap(), None).unwrap_err();
        assert!(
            why.0.ends_with("list it in relay.egress_allow to allow it"),
            "{why}"
        );
        assert!(Policy::pinned(&["no url"], &[]).is_err());
        assert!(Policy::pinned(&["ftp://gw.court.internal/"], &[]).is_err());
    }

    #[test]
    fn pinned_policies_pin_the_port_too() {
        let p = Policy::pinned(
            &[
                "http://10.0.0.5:8080",
                "https://gw.court.internal/v1",
                "http://[::ffff:10.0.0.6]:9000",
            ],
            &[],
        )
        .unwrap()
        .hint("relay.targets (court) endpoint");
        assert!(p.check_destination("10.0.0.5", 8080).is_ok());
        let why = p.check_destination("10.0.0.5", 22).unwrap_err();
        assert!(
            why.0
                .contains("10.0.0.5 port 22 is not a configured endpoint")
                && why.0.contains("configured at port 8080")
                && why
                    .0
                    .ends_with("change relay.targets (court) endpoint to reach it"),
            "{why}"
        );
        // A name is pinned to its scheme's default port when it names none.
        assert!(p.check_destination("gw.court.internal", 443).is_ok());
        assert!(p.check_destination("GW.Court.Internal.", 443).is_ok());
        assert!(p.check_destination("gw.court.internal", 22).is_err());
        assert!(p.check_destination("gw.court.internal", 80).is_err());
        // The same address written another way is the same pin.
        assert!(p.check_destination("10.0.0.6", 9000).is_ok());
        assert!(p.check_destination("[::ffff:10.0.0.6]", 22).is_err());
        assert!(p.check_destination("::ffff:10.0.0.5", 22).is_err());
        // The port pin holds for public hosts too.
        let q = Policy::pinned(&["http://8.8.8.8:8545"], &[]).unwrap();
        assert!(q.check_destination("8.8.8.8", 8545).is_ok());
        assert!(q.check_destination("8.8.8.8", 22).is_err());
        assert!(
            q.check_destination("1.1.1.1", 22).is_ok(),
            "not pinned: public"
        );
    }

    #[tokio::test]
    async fn pinned_urls_are_checked_host_and_port() {
        let p = Policy::pinned(&["http://127.0.0.1:8080/rpc"], &[]).unwrap();
        assert!(
            p.check_url("http://127.0.0.1:8080/other", false)
                .await
                .is_ok()
        );
        assert!(p.check_url("http://127.0.0.1:22/", false).await.is_err());
        assert!(p.check_url("http://127.0.0.1/", false).await.is_err());
        assert!(p.check_url("https://127.0.0.1:8080/", false).await.is_ok());
    }

    /// A loopback listener that counts the connections it accepts.
    async fn counting_listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let n = Arc::new(AtomicUsize::new(0));
        let seen = n.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        (port, n)
    }

    #[tokio::test]
    async fn a_pinned_client_opens_its_configured_port_and_no_other() {
        use std::sync::atomic::Ordering;
        let (configured, configured_seen) = counting_listener().await;
        let (other, other_seen) = counting_listener().await;
        let client = Policy::pinned_client(
            &[format!("http://127.0.0.1:{configured}/rpc")],
            "relay.targets (court) endpoint",
            Duration::from_secs(2),
            Duration::from_secs(5),
        )
        .unwrap();
        let ok = client
            .get(format!("http://127.0.0.1:{configured}/rpc"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(configured_seen.load(Ordering::SeqCst), 1);
        // The same host at another port: refused before any connection,
        // and the refusal is found in the error's source chain.
        let err = client
            .get(format!("http://127.0.0.1:{other}/"))
            .send()
            .await
            .unwrap_err();
        let refused = refusal_in(&err).unwrap_or_else(|| panic!("not a refusal: {err:?}"));
        assert!(
            refused
                .0
                .contains(&format!("port {other} is not a configured endpoint")),
            "{refused}"
        );
        // By name as well (`localhost` resolves to the pinned address, but
        // it is not the configured host: loopback stays refused).
        let err = client
            .get(format!("http://localhost:{other}/"))
            .send()
            .await
            .unwrap_err();
        assert!(refusal_in(&err).is_some(), "{err:?}");
        assert_eq!(other_seen.load(Ordering::SeqCst), 0, "never connected");
    }

    #[tokio::test]
    async fn an_unpinned_client_refuses_ip_literals_without_check_url() {
        use std::sync::atomic::Ordering;
        let (port, seen) = counting_listener().await;
        let client = Arc::new(Policy::new(&[]).unwrap())
            .client(Duration::from_secs(2), Duration::from_secs(5))
            .unwrap();
        let err = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(refusal_in(&err).is_some(), "{err:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 0, "never connected");
        // Allow-listed: connected.
        let client = Arc::new(Policy::new(&["127.0.0.1".into()]).unwrap())
            .client(Duration::from_secs(2), Duration::from_secs(5))
            .unwrap();
        let ok = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_unreadable_destination_is_refused() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Other(u8);
        assert!(destination_of(&Other(1)).is_err());
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Unnameable(&'static str);
        // Debug of a &str is quoted: not the form reqwest prints.
        assert!(destination_of(&Unnameable("http://127.0.0.1:80/")).is_err());
    }

    #[tokio::test]
    async fn urls_are_checked_before_any_connection() {
        let p = Policy::new(&[]).unwrap();
        for url in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:8081/",
            "not a url",
        ] {
            assert!(p.check_url(url, true).await.is_err(), "{url}");
        }
    }
}
