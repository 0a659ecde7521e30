//! The Helm chart (`helm/anchord`), rendered by Helm's own Go engine (Helm
//! v4 SDK through PyPI helm-python-sdk; `scripts/test-peers` installs it and
//! `scripts/helm-render` drives it) and checked object by object: images,
//! ports, probes, Services, the ServiceMonitor, PDBs, the HPA, every
//! ConfigMap/Secret/ServiceAccount reference, hooks, security contexts, and
//! the rendered anchord.toml with each container's environment, validated by
//! this very binary (`anchord config check`), whose drain times the grace
//! periods must exceed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_anchord");
const RELEASE: &str = "evidence";
const NAMESPACE: &str = "anchord-prod";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart() -> PathBuf {
    root().join("helm/anchord")
}

/// The renderer: `ANCHORD_HELM`, else where scripts/test-peers puts it.
fn renderer() -> PathBuf {
    let path = std::env::var_os("ANCHORD_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".anchord/peers/bin/helm-render"));
    let works = Command::new(&path)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "the Helm renderer {} is missing or broken: run scripts/test-peers \
         (installs Helm v4's engine from PyPI helm-python-sdk into .anchord/peers)",
        path.display()
    );
    path
}

struct Rendered {
    objects: Vec<Value>,
}

/// `helm template` with the given values (JSON, merged like --set-json).
fn render(values: &[Value]) -> Result<Rendered, String> {
    let mut cmd = Command::new(renderer());
    cmd.arg("template")
        .arg(chart())
        .args(["--name", RELEASE, "--namespace", NAMESPACE]);
    for v in values {
        cmd.arg("--set-json").arg(v.to_string());
    }
    let out = cmd.output().expect("running the Helm renderer");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let doc: Value = serde_json::from_slice(&out.stdout).expect("renderer prints JSON");
    let objects: Vec<Value> = doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].clone())
        .collect();
    let problems = kubernetes_validate(&objects);
    assert!(
        problems.is_empty(),
        "objects rendered with values {values:?} are not valid Kubernetes objects:\n  {}",
        problems.join("\n  ")
    );
    Ok(Rendered { objects })
}

/// The Kubernetes versions the chart supports (Chart.yaml `kubeVersion`,
/// helm/README.md): every rendered object is validated against each one's
/// API schemas.
const KUBE_VERSIONS: &[&str] = &[
    "1.25.0", "1.26.0", "1.27.0", "1.28.0", "1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0",
    "1.34.0", "1.35.0", "1.36.0", "1.37.0",
];

/// Kinds of custom resources (prometheus-operator's) that no Kubernetes
/// version's schema describes: their shape is checked by the tests here.
const CUSTOM_KINDS: &[(&str, &str)] = &[
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
];

/// Validate objects against the Kubernetes OpenAPI schemas of every version
/// in [`KUBE_VERSIONS`], strictly (unknown fields are errors), with PyPI
/// `kubernetes-validate` (installed by scripts/test-peers into the venv; it
/// ships the schemas, no cluster is needed). One line per problem.
fn kubernetes_validate(objects: &[Value]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
import kubernetes_validate as kv
req = json.load(sys.stdin)
custom = {tuple(c) for c in req["custom"]}
out = []
for v in req["versions"]:
    for o in req["objects"]:
        what = "%s %s (Kubernetes %s)" % (o.get("kind"), o.get("metadata", {}).get("name"), v)
        if (o.get("apiVersion"), o.get("kind")) in custom:
            continue
        try:
            kv.validate(o, v, True)
        except kv.ValidationError as e:
            out.append("%s: %s at %s" % (what, e.message, "/".join(map(str, e.path))))
        except Exception as e:
            out.append("%s: %s: %s" % (what, type(e).__name__, e))
print(json.dumps(out))
"#;
    let python = root().join(".anchord/peers/venv/bin/python");
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/test-peers (installs kubernetes-validate in the venv)",
                python.display()
            )
        });
    let req = json!({"versions": KUBE_VERSIONS, "objects": objects, "custom": CUSTOM_KINDS});
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(req.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubernetes-validate failed to run (scripts/test-peers installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the validator prints a JSON list")
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }
    fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap()
}

fn is_hook(o: &Value) -> bool {
    !o["metadata"]["annotations"]["helm.sh/hook"].is_null()
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every key/value of `selector` is among `labels` (and the selector is not empty).
fn selects(selector: &Value, labels: &Value) -> bool {
    let (s, l) = (str_map(selector), str_map(labels));
    !s.is_empty() && s.iter().all(|(k, v)| l.get(k) == Some(v))
}

/// A generated key pair's public key (`anchord keygen`), for values that
/// must parse as real vkeys.
fn vkey(name: &str, witness: bool, dir: &Path) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["keygen", "--name", name, "--out"])
        .arg(dir.join(format!("{}.key", name.replace('/', "_"))));
    if witness {
        cmd.arg("--witness");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// `anchord config check --json` on `toml` with exactly `env`.
fn config_check(toml: &str, env: &[(String, String)], dir: &Path) -> Value {
    let file = dir.join("anchord.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["config", "check", "--json", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("config check printed no JSON ({e}): {out:?}"));
    assert_eq!(v["ok"].as_bool() == Some(true), out.status.success());
    v
}

/// What a values set should produce.
struct Expect {
    image: String,
    pull_policy: &'static str,
    admin_port: u64,
    existing_secret: Option<&'static str>,
    service_monitor: bool,
    workflow: bool,
    /// `workflow.storage.persistence.existingClaim`, when set.
    existing_claim: Option<&'static str>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            image: "anchord/anchord:0.1.0".into(),
            pull_policy: "IfNotPresent",
            admin_port: 9464,
            existing_secret: None,
            service_monitor: false,
            workflow: true,
            existing_claim: None,
        }
    }
}

/// The pod templates of Deployments and Jobs: (owner, pod template).
fn workloads(r: &Rendered) -> Vec<(&Value, &Value)> {
    r.objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "Job")
        .map(|o| (o, &o["spec"]["template"]))
        .collect()
}

fn component(o: &Value) -> &str {
    o["metadata"]["labels"]["app.kubernetes.io/component"]
        .as_str()
        .unwrap_or_default()
}

fn check(r: &Rendered, e: &Expect) {
    let tmp = tempdir();
    // Unique (kind, name).
    let mut seen = std::collections::HashSet::new();
    for o in &r.objects {
        assert!(
            seen.insert((o["kind"].to_string(), name(o).to_owned())),
            "duplicate {} {}",
            o["kind"],
            name(o)
        );
    }
    let deployments = r.of_kind("Deployment");
    let mut components: Vec<&str> = deployments.iter().map(|d| component(d)).collect();
    components.sort();
    let mut want = vec!["batcher", "ingest", "relay", "verifier", "witness"];
    if e.workflow {
        want.push("workflow");
    }
    want.sort();
    assert_eq!(components, want, "one Deployment per stage");

    for (owner, tpl) in workloads(r) {
        let what = format!("{} {}", owner["kind"], name(owner));
        let spec = &tpl["spec"];
        let hook = is_hook(owner);
        if owner["kind"] == "Deployment" {
            assert!(
                selects(
                    &owner["spec"]["selector"]["matchLabels"],
                    &tpl["metadata"]["labels"]
                ),
                "{what}: selector does not select its own pods"
            );
        }
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{what}");
        // ServiceAccount reference.
        if let Some(sa) = spec["serviceAccountName"].as_str() {
            let found = r.get("ServiceAccount", sa);
            assert!(
                found.is_some_and(|s| is_hook(s) == hook) || sa == "default",
                "{what}: ServiceAccount {sa} is not rendered (or not there when a hook runs)"
            );
        }
        // Volumes: ConfigMaps and Secrets exist (and exist when a hook runs).
        let mut volumes = BTreeMap::new();
        for v in spec["volumes"].as_array().unwrap() {
            volumes.insert(v["name"].as_str().unwrap().to_owned(), v);
            if let Some(cm) = v["configMap"]["name"].as_str() {
                let found = r.get("ConfigMap", cm);
                assert!(
                    found.is_some_and(|c| is_hook(c) == hook),
                    "{what}: ConfigMap {cm} missing (or created after the hook)"
                );
            }
            if let Some(s) = v["secret"]["secretName"].as_str() {
                for item in v["secret"]["items"].as_array().unwrap() {
                    check_secret_ref(r, e, &what, hook, s, item["key"].as_str().unwrap());
                }
            }
        }
        for c in spec["containers"].as_array().unwrap() {
            let cwhat = format!("{what} container {}", c["name"]);
            assert_eq!(c["image"], e.image.as_str(), "{cwhat}: image");
            assert_eq!(c["imagePullPolicy"], e.pull_policy, "{cwhat}");
            assert_eq!(
                c["securityContext"]["readOnlyRootFilesystem"], true,
                "{cwhat}"
            );
            assert_eq!(
                c["securityContext"]["allowPrivilegeEscalation"], false,
                "{cwhat}"
            );
            // Mounts name volumes.
            let mut config_file = None;
            for m in c["volumeMounts"].as_array().unwrap() {
                let v = volumes
                    .get(m["name"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("{cwhat}: mount {} has no volume", m["name"]));
                if let Some(cm) = v["configMap"]["name"].as_str() {
                    config_file = Some((m["mountPath"].as_str().unwrap().to_owned(), cm));
                }
            }
            // Env: secret references exist; literal values collected.
            let mut env = Vec::new();
            for ev in c["env"].as_array().unwrap() {
                let k = ev["name"].as_str().unwrap().to_owned();
                if let Some(v) = ev["value"].as_str() {
                    env.push((k, v.to_owned()));
                } else if let Some(sk) = ev["valueFrom"]["secretKeyRef"].as_object() {
                    let s = sk["name"].as_str().unwrap();
                    check_secret_ref(r, e, &cwhat, hook, s, sk["key"].as_str().unwrap());
                    let dummy = if k == "DATABASE_URL" {
                        "postgres://anchord@db.invalid:5432/anchord"
                    } else {
                        "secret"
                    };
                    env.push((k, dummy.to_owned()));
                } else {
                    panic!("{cwhat}: env {k} has neither value nor secretKeyRef");
                }
            }
            // The configuration the container is started with.
            let args: Vec<&str> = c["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(c["command"], json!(["anchord"]), "{cwhat}");
            let at = args
                .iter()
                .position(|a| *a == "--config")
                .expect("--config");
            let path = args[at + 1];
            let (dir, cm) = config_file.unwrap_or_else(|| panic!("{cwhat}: no ConfigMap mounted"));
            let key = path.strip_prefix(&format!("{dir}/")).unwrap_or_else(|| {
                panic!("{cwhat}: {path} is not under the ConfigMap mount {dir}")
            });
            let toml_text = r.get("ConfigMap", cm).unwrap()["data"][key]
                .as_str()
                .unwrap_or_else(|| panic!("{cwhat}: ConfigMap {cm} has no {key}"))
                .to_owned();
            let stage = args[0];
            let checked = config_check(&toml_text, &env, &tmp);
            assert_eq!(
                checked["ok"], true,
                "{cwhat}: anchord config check refuses the rendered configuration with this environment: {checked}\n{toml_text}"
            );
            let parsed: toml::Table = toml::from_str(&toml_text).unwrap();
            // The workflow API writes uploads under workflow.storage_dir:
            // on the read-only root filesystem that must be a writable
            // mount, backed by a claim the chart renders (or an existing
            // one the values name).
            if stage == "workflow" {
                let dir = parsed["workflow"]["storage_dir"]
                    .as_str()
                    .unwrap_or_else(|| {
                        panic!("{cwhat}: the rendered config sets no workflow.storage_dir")
                    });
                let m = c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["mountPath"] == dir)
                    .unwrap_or_else(|| panic!("{cwhat}: nothing mounted at storage_dir {dir}"));
                assert_ne!(
                    m["readOnly"], true,
                    "{cwhat}: storage_dir mounted read-only"
                );
                let v = volumes[m["name"].as_str().unwrap()];
                if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                    assert!(
                        r.get("PersistentVolumeClaim", claim).is_some()
                            || e.existing_claim == Some(claim),
                        "{cwhat}: claim {claim} is neither rendered nor an existing one"
                    );
                } else {
                    assert!(v["emptyDir"].is_object(), "{cwhat}: storage volume {v}");
                }
            }
            // Listeners: 0.0.0.0 on the container's ports.
            let ports: Vec<(String, u64)> = c["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["name"].as_str().unwrap_or_default().to_owned(),
                                p["containerPort"].as_u64().unwrap(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let listen = |section: &str| -> Option<String> {
                parsed
                    .get(section)?
                    .get("listen")?
                    .as_str()
                    .map(str::to_owned)
            };
            if owner["kind"] == "Deployment" {
                assert_eq!(
                    listen("admin"),
                    Some(format!("0.0.0.0:{}", e.admin_port)),
                    "{cwhat}: admin.listen"
                );
                assert!(
                    ports.contains(&("admin".into(), e.admin_port)),
                    "{cwhat}: admin port"
                );
                if ["verifier", "witness", "workflow"].contains(&stage) {
                    let http = ports.iter().find(|p| p.0 == "http").expect("http port").1;
                    assert_eq!(listen(stage), Some(format!("0.0.0.0:{http}")), "{cwhat}");
                }
                // Probes on the admin port.
                for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
                    let g = &c[probe]["httpGet"];
                    assert_eq!(g["path"], path, "{cwhat}: {probe}");
                    let port = resolve_port(&ports, &g["port"]).unwrap_or_else(|| {
                        panic!("{cwhat}: {probe} port {} not declared", g["port"])
                    });
                    assert_eq!(port, e.admin_port, "{cwhat}: {probe} not on the admin port");
                }
                // Grace period above the drain time the binary reports.
                let grace = spec["terminationGracePeriodSeconds"]
                    .as_u64()
                    .expect("grace");
                let annotated: u64 = tpl["metadata"]["annotations"]["anchord.io/drain-seconds"]
                    .as_str()
                    .expect("drain annotation")
                    .parse()
                    .unwrap();
                if let Some(d) = checked["drain_seconds"][stage].as_u64() {
                    assert_eq!(
                        annotated, d,
                        "{cwhat}: the chart's drain time differs from `anchord config check`'s"
                    );
                }
                assert!(
                    grace > annotated,
                    "{cwhat}: terminationGracePeriodSeconds {grace} <= drain {annotated}"
                );
            } else {
                assert_eq!(stage, "migrate", "{cwhat}");
                let hooks = owner["metadata"]["annotations"]["helm.sh/hook"]
                    .as_str()
                    .unwrap();
                assert!(
                    hooks.contains("pre-install") && hooks.contains("pre-upgrade"),
                    "{cwhat}"
                );
            }
        }
    }

    // Services select a Deployment's pods and target its declared ports.
    let services = r.of_kind("Service");
    for s in &services {
        let d = deployments
            .iter()
            .find(|d| {
                selects(
                    &s["spec"]["selector"],
                    &d["spec"]["template"]["metadata"]["labels"],
                )
            })
            .unwrap_or_else(|| panic!("Service {} selects no Deployment", name(s)));
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let ports: Vec<(String, u64)> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["containerPort"].as_u64().unwrap(),
                )
            })
            .collect();
        for p in s["spec"]["ports"].as_array().unwrap() {
            assert!(
                resolve_port(&ports, &p["targetPort"]).is_some(),
                "Service {} targets port {} that {} does not declare",
                name(s),
                p["targetPort"],
                name(d)
            );
        }
    }
    // PDBs select pods.
    for p in r.of_kind("PodDisruptionBudget") {
        assert!(
            deployments.iter().any(|d| selects(
                &p["spec"]["selector"]["matchLabels"],
                &d["spec"]["template"]["metadata"]["labels"]
            )),
            "PodDisruptionBudget {} selects no pods",
            name(p)
        );
    }
    assert_eq!(r.of_kind("PodDisruptionBudget").len(), deployments.len());
    // The HPA scales the verifier Deployment, which leaves replicas to it.
    for h in r.of_kind("HorizontalPodAutoscaler") {
        assert_eq!(h["apiVersion"], "autoscaling/v2");
        let t = &h["spec"]["scaleTargetRef"];
        assert_eq!(t["kind"], "Deployment");
        let d = r
            .get("Deployment", t["name"].as_str().unwrap())
            .expect("HPA target exists");
        assert_eq!(component(d), "verifier");
        assert!(
            d["spec"]["replicas"].is_null(),
            "HPA target must not pin replicas"
        );
    }
    // Batcher: two replicas (one leads through the PostgreSQL lock).
    let batcher = deployments
        .iter()
        .find(|d| component(d) == "batcher")
        .unwrap();
    assert_eq!(batcher["spec"]["replicas"], 2);
    // ServiceMonitor: scrapes /metrics on the admin port of every stage's Service.
    let monitors = r.of_kind("ServiceMonitor");
    assert_eq!(monitors.len(), usize::from(e.service_monitor));
    for m in monitors {
        assert_eq!(m["apiVersion"], "monitoring.coreos.com/v1");
        let selected: Vec<&&Value> = services
            .iter()
            .filter(|s| {
                selects(
                    &m["spec"]["selector"]["matchLabels"],
                    &s["metadata"]["labels"],
                )
            })
            .collect();
        assert_eq!(
            selected.len(),
            deployments.len(),
            "ServiceMonitor selects every stage"
        );
        for ep in m["spec"]["endpoints"].as_array().unwrap() {
            assert_eq!(ep["path"], "/metrics");
            for s in &selected {
                let p = s["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == ep["port"])
                    .unwrap_or_else(|| panic!("Service {} has no port {}", name(s), ep["port"]));
                assert_eq!(p["port"].as_u64(), Some(e.admin_port));
            }
        }
    }
    network_policies(r);
}

/// The NetworkPolicies (when rendered): each stage's pods are selected by
/// exactly one, whose every ingress rule names its ports; the admin port is
/// open only to named peers (never to everyone), the API port of the HTTP
/// stages is opened by its own rule, and no other port is.
fn network_policies(r: &Rendered) {
    let policies = r.of_kind("NetworkPolicy");
    if policies.is_empty() {
        return;
    }
    for (owner, tpl) in workloads(r) {
        if owner["kind"] != "Deployment" {
            continue;
        }
        let what = name(owner);
        let mine: Vec<&&Value> = policies
            .iter()
            .filter(|p| {
                selects(
                    &p["spec"]["podSelector"]["matchLabels"],
                    &tpl["metadata"]["labels"],
                )
            })
            .collect();
        assert_eq!(mine.len(), 1, "{what}: one NetworkPolicy selects its pods");
        let p = &mine[0]["spec"];
        assert_eq!(p["policyTypes"], json!(["Ingress"]), "{what}");
        let container_ports: Vec<String> = tpl["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        let mut opened = Vec::new();
        for rule in p["ingress"].as_array().unwrap() {
            let ports = rule["ports"]
                .as_array()
                .expect("every rule names its ports");
            for port in ports {
                let port = port["port"].as_str().unwrap().to_owned();
                assert!(
                    container_ports.contains(&port),
                    "{what}: the policy opens {port}, which the pod does not have"
                );
                if port == "admin" {
                    let from = rule["from"].as_array().map(Vec::len).unwrap_or(0);
                    assert!(from > 0, "{what}: the admin port is open to everyone");
                    for peer in rule["from"].as_array().unwrap() {
                        assert!(
                            !peer["namespaceSelector"].is_null()
                                || !peer["podSelector"].is_null()
                                || !peer["ipBlock"].is_null(),
                            "{what}: an empty peer"
                        );
                        assert_ne!(
                            peer["namespaceSelector"],
                            json!({}),
                            "{what}: every namespace may reach the admin port"
                        );
                    }
                }
                opened.push(port);
            }
        }
        opened.sort();
        let mut want = container_ports.clone();
        want.sort();
        assert_eq!(
            opened, want,
            "{what}: the policy opens exactly the pod's ports"
        );
    }
}

fn resolve_port(ports: &[(String, u64)], port: &Value) -> Option<u64> {
    match port {
        Value::String(n) => ports.iter().find(|p| &p.0 == n).map(|p| p.1),
        Value::Number(n) => ports.iter().find(|p| Some(p.1) == n.as_u64()).map(|p| p.1),
        _ => None,
    }
}

fn check_secret_ref(r: &Rendered, e: &Expect, what: &str, hook: bool, secret: &str, key: &str) {
    if e.existing_secret == Some(secret) {
        return;
    }
    assert!(
        e.existing_secret.is_none(),
        "{what}: uses Secret {secret} although secrets.existingSecret is set"
    );
    let s = r
        .get("Secret", secret)
        .unwrap_or_else(|| panic!("{what}: Secret {secret} is not rendered"));
    assert_eq!(
        is_hook(s),
        hook,
        "{what}: Secret {secret} does not exist when it runs"
    );
    assert!(
        !s["data"][key].is_null(),
        "{what}: Secret {secret} has no item {key}"
    );
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "anchord-helm-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn default_values_render_to_consistent_manifests() {
    let r = render(&[]).unwrap();
    check(&r, &Expect::default());
    // The chart-created Secret, the migrate hook, no ServiceMonitor.
    assert!(
        r.get("Secret", &format!("{RELEASE}-anchord-secrets"))
            .is_some()
    );
    assert!(
        r.get("Job", &format!("{RELEASE}-anchord-migrate"))
            .is_some()
    );
}

#[test]
fn production_values_render_to_consistent_manifests() {
    let keys = tempdir();
    let sealer = vkey("bank.example/ledger", false, &keys);
    let witness = vkey("notary", true, &keys);
    let r = render(&[json!({
        "image": {"repository": "registry.bank.internal/anchord", "tag": "1.2.3", "pullPolicy": "Always"},
        "admin": {"port": 9500},
        "kafka": {"brokers": "kafka-0.kafka:9093,kafka-1.kafka:9093", "partitions": 4},
        "secrets": {"existingSecret": "anchord-vault"},
        "serviceMonitor": {"enabled": true, "labels": {"release": "prom"}},
        "batcher": {"sealerVkey": sealer},
        "witness": {"vkey": witness, "separateDatabase": true},
        "ingest": {
            "replicas": 4,
            "extraEnv": [{"name": "ANCHORD__INGEST__BATCH_MAX", "value": "5000"}]
        },
        "relay": {"terminationGracePeriodSeconds": 120},
        "workflow": {"keyEncryptionKey": {"enabled": true}},
        "config": {
            "hash_suite": "sm3",
            "ingest": {
                "tenants": ["icbc-sh", "ccb-bj"],
                "drain_timeout_ms": 45500,
                "librdkafka": {"security.protocol": "ssl"}
            },
            "batcher": {"origin": "bank.example/ledger", "request_timeout_ms": 3000, "witness_attempts": 2, "quorum": 1},
            "relay": {"targets": [
                {"name": "hz-court", "kind": "judicial", "url": "https://gateway.court.example", "account_id": "bank-001"},
                {"name": "consortium-evm", "kind": "evm", "rpc_url": "http://evm:8545", "chain_id": 31337,
                 "confirmations": 2, "request_timeout_ms": 20000, "signing_key": "/etc/anchord/keys/relay-signer.key"}
            ]},
            "verifier": {"public_url": "https://proofs.bank.example", "rate_per_second": 500}
        }
    })])
    .unwrap();
    check(
        &r,
        &Expect {
            image: "registry.bank.internal/anchord:1.2.3".into(),
            pull_policy: "Always",
            admin_port: 9500,
            existing_secret: Some("anchord-vault"),
            service_monitor: true,
            workflow: true,
            existing_claim: None,
        },
    );
    assert!(
        r.of_kind("Secret").is_empty(),
        "existingSecret: the chart creates none"
    );
    let cm = r
        .get("ConfigMap", &format!("{RELEASE}-anchord-config"))
        .unwrap();
    let toml: toml::Table = toml::from_str(cm["data"]["anchord.toml"].as_str().unwrap()).unwrap();
    // The in-cluster witness is wired into the batcher and follows this log.
    let w = &toml["batcher"]["witnesses"].as_array().unwrap()[0];
    assert_eq!(
        w["url"].as_str(),
        Some(format!("http://{RELEASE}-anchord-witness.{NAMESPACE}.svc:7380").as_str())
    );
    assert_eq!(
        toml["witness"]["logs"][0]["vkeys"][0].as_str(),
        Some(sealer.as_str())
    );
    assert_eq!(toml["ingest"]["topic_partitions"].as_integer(), Some(4));
}

#[test]
fn without_the_workflow_stage_everything_is_checked_by_the_binary() {
    let r = render(&[
        json!({"workflow": {"enabled": false}, "verifier": {"autoscaling": {"enabled": false}}}),
    ])
    .unwrap();
    check(
        &r,
        &Expect {
            workflow: false,
            existing_claim: None,
            ..Expect::default()
        },
    );
    assert!(r.of_kind("HorizontalPodAutoscaler").is_empty());
    let v = r
        .get("Deployment", &format!("{RELEASE}-anchord-verifier"))
        .unwrap();
    assert_eq!(v["spec"]["replicas"], 2);
}

#[test]
fn ingest_replicas_above_the_partition_count_fail_to_render() {
    let err = render(&[json!({"kafka": {"partitions": 3}, "ingest": {"replicas": 4}})])
        .err()
        .expect("4 consumers on 3 partitions must not render");
    assert!(
        err.contains("ingest.replicas (4) exceeds kafka.partitions (3)"),
        "{err}"
    );
    render(&[json!({"kafka": {"partitions": 3}, "ingest": {"replicas": 3}})]).unwrap();
}

#[test]
fn a_grace_period_not_above_the_drain_time_fails_to_render() {
    let err = render(&[json!({"config": {"ingest": {"drain_timeout_ms": 60000}}, "ingest": {"terminationGracePeriodSeconds": 60}})])
        .err()
        .expect("grace = drain must not render");
    assert!(
        err.contains("ingest.terminationGracePeriodSeconds (60)"),
        "{err}"
    );
    let err = render(&[json!({"batcher": {"terminationGracePeriodSeconds": 5}})])
        .err()
        .expect("a grace period below the batcher's drain must not render");
    assert!(err.contains("batcher drain time (22 s)"), "{err}");
}

#[test]
fn workflow_storage_is_a_claim_and_several_replicas_need_read_write_many() {
    let r = render(&[
        json!({"workflow": {"storage": {"persistence": {"existingClaim": "evidence-files"}}}}),
    ])
    .unwrap();
    assert!(
        r.of_kind("PersistentVolumeClaim").is_empty(),
        "an existing claim is not created again"
    );
    check(
        &r,
        &Expect {
            existing_claim: Some("evidence-files"),
            ..Expect::default()
        },
    );
    let err = render(&[json!({"workflow": {"replicas": 2}})])
        .err()
        .expect("two replicas on a ReadWriteOnce volume must not render");
    assert!(err.contains("ReadWriteMany"), "{err}");
    render(&[json!({"workflow": {"replicas": 2, "storage": {"persistence": {"accessModes": ["ReadWriteMany"]}}}})])
        .unwrap();
}

#[test]
fn platform_held_keys_need_the_key_encryption_key_in_the_secret() {
    let err = render(&[json!({"workflow": {"keyEncryptionKey": {"enabled": true}}})])
        .err()
        .expect("enabling platform-held keys without the key must not render");
    assert!(err.contains("secrets.workflowKek is required"), "{err}");

    let kek = "11".repeat(32);
    let r = render(&[json!({
        "workflow": {"keyEncryptionKey": {"enabled": true}},
        "secrets": {"workflowKek": kek}
    })])
    .unwrap();
    check(&r, &Expect::default());
    let secret = r
        .of_kind("Secret")
        .into_iter()
        .find(|o| !is_hook(o))
        .expect("the chart's Secret");
    assert!(
        secret["data"]["workflow-kek"].is_string(),
        "the Secret carries the key: {secret}"
    );
    let toml_text = r
        .of_kind("ConfigMap")
        .into_iter()
        .find(|o| !is_hook(o))
        .expect("the chart's ConfigMap")["data"]["anchord.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let parsed: toml::Table = toml::from_str(&toml_text).unwrap();
    let path = parsed["workflow"]["key_encryption_key_file"]
        .as_str()
        .unwrap();
    let wf = r
        .of_kind("Deployment")
        .into_iter()
        .find(|d| component(d) == "workflow")
        .unwrap();
    let pod = &wf["spec"]["template"]["spec"];
    let mounted = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| path.starts_with(m["mountPath"].as_str().unwrap()) && m["name"] == "keys");
    assert!(
        mounted,
        "{path} is not under the workflow pod's key mount: {pod}"
    );
    let items = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "keys")
        .map(|v| v["secret"]["items"].clone())
        .unwrap();
    assert!(
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["key"] == "workflow-kek" && path.ends_with(i["path"].as_str().unwrap())),
        "{items}"
    );
}

/// Issue 12, flaw 4: the admin/metrics port (which a webhook SSRF once
/// reached) is restricted to the monitoring namespace by default, the
/// selectors are values-configurable, and the policy can be turned off.
#[test]
fn network_policies_restrict_the_admin_port_to_monitoring() {
    let r = render(&[]).unwrap();
    let policies = r.of_kind("NetworkPolicy");
    assert_eq!(policies.len(), 6, "one per stage");
    for p in &policies {
        let admin = p["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ports"][0]["port"] == "admin")
            .unwrap();
        // Monitoring, and the workflow's monitoring page (its instance
        // scraper reads every stage's /metrics and /readyz).
        assert_eq!(
            admin["from"],
            json!([{
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {}
            }, {
                "podSelector": {"matchLabels": {
                    "app.kubernetes.io/component": "workflow",
                    "app.kubernetes.io/instance": RELEASE,
                    "app.kubernetes.io/name": "anchord"
                }}
            }]),
            "{}",
            name(p)
        );
    }
    let workflow = r
        .get("NetworkPolicy", &format!("{RELEASE}-anchord-workflow"))
        .unwrap();
    let api = workflow["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ports"][0]["port"] == "http")
        .expect("the workflow API port has its own rule");
    assert!(api["from"].is_null(), "the API is open by default: {api}");

    let r = render(&[json!({"networkPolicy": {
        "admin": {
            // Values merge: null drops the default label.
            "namespaceSelector": {"matchLabels": {"team": "observability", "kubernetes.io/metadata.name": null}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            "extraFrom": [{"ipBlock": {"cidr": "10.9.0.0/16"}}]
        },
        "api": {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]}
    }})])
    .unwrap();
    check(&r, &Expect::default());
    let workflow = r
        .get("NetworkPolicy", &format!("{RELEASE}-anchord-workflow"))
        .unwrap();
    assert_eq!(
        workflow["spec"]["ingress"][0]["from"],
        json!([
            {"namespaceSelector": {"matchLabels": {"team": "observability"}},
             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
            {"ipBlock": {"cidr": "10.9.0.0/16"}},
            {"podSelector": {"matchLabels": {
                "app.kubernetes.io/component": "workflow",
                "app.kubernetes.io/instance": RELEASE,
                "app.kubernetes.io/name": "anchord"
            }}}
        ])
    );
    assert_eq!(
        workflow["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    let r = render(&[json!({"networkPolicy": {"enabled": false}})]).unwrap();
    assert!(r.of_kind("NetworkPolicy").is_empty());
    let r = render(&[json!({"workflow": {"enabled": false}})]).unwrap();
    assert_eq!(r.of_kind("NetworkPolicy").len(), 5);
}

#[test]
fn the_chart_passes_helm_lint_strict() {
    let out = Command::new(renderer())
        .arg("lint")
        .arg(chart())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm lint --strict: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A YAML file as JSON (PyYAML from the test venv; the workspace has no
/// YAML crate).
fn yaml_as_json(path: &Path) -> Value {
    let out = Command::new(root().join(".anchord/peers/venv/bin/python"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .expect("running the venv's python (scripts/test-peers)");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_kubernetes_schema_check_rejects_what_an_api_server_would() {
    let r = render(&[]).unwrap();
    let deployment = r.of_kind("Deployment")[0].clone();
    // A misspelt field (strict mode), a wrong type, a missing required field.
    let mut unknown = deployment.clone();
    unknown["spec"]["replica"] = json!(2);
    let mut wrong_type = deployment.clone();
    wrong_type["spec"]["replicas"] = json!("two");
    let mut missing = deployment.clone();
    missing["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    for (what, o) in [
        ("unknown field", unknown),
        ("wrong type", wrong_type),
        ("missing name", missing),
    ] {
        let problems = kubernetes_validate(&[o]);
        assert_eq!(
            problems.len(),
            KUBE_VERSIONS.len(),
            "{what}: one problem per Kubernetes version expected, got {problems:?}"
        );
    }
    // A kind that was removed (policy/v1beta1 PodDisruptionBudget, gone in
    // 1.25) is refused for every supported version.
    let mut pdb = r.of_kind("PodDisruptionBudget")[0].clone();
    pdb["apiVersion"] = json!("policy/v1beta1");
    assert_eq!(kubernetes_validate(&[pdb]).len(), KUBE_VERSIONS.len());
    assert!(kubernetes_validate(&[deployment]).is_empty());
}

#[test]
fn the_supported_kubernetes_versions_are_the_validated_ones() {
    let chart_yaml = yaml_as_json(&chart().join("Chart.yaml"));
    let first = KUBE_VERSIONS[0];
    let last = KUBE_VERSIONS[KUBE_VERSIONS.len() - 1];
    let (major, minor) = last.rsplit_once(".0").unwrap().0.split_once('.').unwrap();
    let next = format!("{major}.{}.0", minor.parse::<u32>().unwrap() + 1);
    assert_eq!(
        chart_yaml["kubeVersion"],
        format!(">={first}-0 <{next}-0"),
        "Chart.yaml kubeVersion must name the versions the test validates"
    );
    let readme = std::fs::read_to_string(root().join("helm/README.md")).unwrap();
    let (lo, hi) = (first.trim_end_matches(".0"), last.trim_end_matches(".0"));
    assert!(
        readme.contains(&format!("Kubernetes {lo} to {hi}")),
        "helm/README.md must state the supported versions (Kubernetes {lo} to {hi})"
    );
}

#[test]
fn the_prometheus_rule_carries_the_alerts_file_and_the_chart_copy_agrees() {
    let source = root().join("dashboards/alerts.yml");
    let copy = chart().join("files/alerts.yml");
    assert_eq!(
        std::fs::read(&source).unwrap(),
        std::fs::read(&copy).unwrap(),
        "helm/anchord/files/alerts.yml differs from dashboards/alerts.yml (the one \
         source): copy it again (cp dashboards/alerts.yml helm/anchord/files/alerts.yml)"
    );
    assert!(render(&[]).unwrap().of_kind("PrometheusRule").is_empty());
    let r = render(&[
        json!({"prometheusRule": {"enabled": true, "labels": {"release": "kube-prometheus"}}}),
    ])
    .unwrap();
    let rules = r.of_kind("PrometheusRule");
    assert_eq!(rules.len(), 1);
    let rule = rules[0];
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus");
    assert_eq!(
        rule["metadata"]["labels"]["app.kubernetes.io/instance"],
        RELEASE
    );
    assert_eq!(
        rule["spec"]["groups"],
        yaml_as_json(&source)["groups"],
        "the PrometheusRule's groups are the alerts file's"
    );
    // Every rule has what prometheus-operator's CRD requires and a runbook.
    for g in rule["spec"]["groups"].as_array().unwrap() {
        for a in g["rules"].as_array().unwrap() {
            assert!(a["alert"].is_string() && a["expr"].is_string(), "{a}");
            assert!(a["annotations"]["runbook_url"].is_string(), "{a}");
        }
    }
}
