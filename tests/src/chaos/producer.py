"""The chaos suite's independent producer: confluent-kafka (librdkafka from
PyPI's wheel), written from docs/kafka-message-v1.md alone, not from
anchord's ingest or loadgen code.

Publishes valid evidence messages and a known set of malformed ones (each
with the dead-letter reason docs/kafka-message-v1.md gives for it) at a
steady rate until the stop file appears, then flushes. Every message is
recorded in the manifest (JSON lines) with the outcome of its delivery:
"acked" true only when the broker acknowledged it.

Not idempotent on purpose: tansu 0.6's sqlite engine panics when an
idempotent producer resumes after a broker restart (README, known broker
faults). Retries may therefore write a message twice; the ledger's
(tenant, external id) identity makes that a duplicate, which is what banks'
at-least-once producers rely on. max.in.flight 1 keeps each key in order.
"""
import base64
import hashlib
import json
import os
import random
import sys
import time

from confluent_kafka import Producer

brokers, topic, manifest_path, stop_path, seed, rate = sys.argv[1:7]
seed = int(seed)
rate = float(rate)
rng = random.Random(seed)
TENANTS = ["icbc-sh", "ccb-bj"]

producer = Producer({
    "bootstrap.servers": brokers,
    "acks": "all",
    "enable.idempotence": False,
    "max.in.flight.requests.per.connection": 1,
    "retries": 1000000,
    "retry.backoff.ms": 200,
    "message.timeout.ms": 300000,
    "linger.ms": 5,
    "socket.keepalive.enable": True,
    "reconnect.backoff.max.ms": 1000,
})
manifest = open(manifest_path, "w", buffering=1)


acked_valid = []  # ids of valid messages the broker acknowledged
# A delivery that failed (tansu answers some produce requests with
# UNKNOWN_SERVER_ERROR around its restarts, which librdkafka does not retry)
# is sent again, as an at-least-once bank producer would, up to ATTEMPTS.
ATTEMPTS = 10
retry = []


def record(key, value, entry, attempt):
    def cb(err, msg):
        if err is not None and attempt < ATTEMPTS:
            retry.append((time.monotonic() + 0.5 * attempt, key, value, entry, attempt + 1))
            return
        e = dict(entry)
        e["acked"] = err is None
        e["attempts"] = attempt
        if err is None and e["kind"] == "valid":
            acked_valid.append(e["id"])
        if err is not None:
            e["error"] = str(err)
        manifest.write(json.dumps(e) + "\n")
    return cb


def send(key, value, entry, attempt=1):
    while True:
        try:
            producer.produce(topic, key=key, value=value,
                             on_delivery=record(key, value, entry, attempt))
            return
        except BufferError:
            producer.poll(0.1)


def resend_failed():
    """Send again the failed deliveries whose backoff has passed."""
    now = time.monotonic()
    due = [r for r in retry if r[0] <= now]
    for r in due:
        retry.remove(r)
        send(*r[1:])


def valid(i, tenant, ext, digest, upper=False):
    h = digest.upper() if upper else digest
    return json.dumps({
        "v": 1, "tenant": tenant, "external_id": ext, "hash_alg": "sha256",
        "hash": h, "metadata": {"n": i, "type": "chaos"},
        "produced_at": int(time.time() * 1000),
    }, separators=(",", ":")).encode()


def b64(b):
    return base64.b64encode(b).decode() if b is not None else None


def malformed(i, kind):
    """A malformed message of `kind` and its expected dead-letter reason."""
    nonce = f"chaos-bad-{seed}-{i}"
    base = {"v": 1, "tenant": "icbc-sh", "external_id": nonce, "hash_alg": "sha256",
            "hash": hashlib.sha256(nonce.encode()).hexdigest(), "produced_at": 1764000000000}
    if kind == "oversized":
        return json.dumps(dict(base, pad="x" * 20000)).encode(), "oversized"
    if kind == "not_json":
        return f"not json {{{nonce}".encode(), "malformed_json"
    if kind == "dup_key":
        s = json.dumps(base)[:-1] + ', "metadata": {"a": 1, "a": 2}}'
        return s.encode(), "malformed_json"
    if kind == "tombstone":
        return None, "malformed_json"
    if kind == "missing_v":
        b = dict(base); del b["v"]
        return json.dumps(b).encode(), "missing_field"
    if kind == "v2":
        return json.dumps(dict(base, v=2)).encode(), "unsupported_version"
    if kind == "v_string":
        return json.dumps(dict(base, v="1")).encode(), "bad_field"
    if kind == "tenant":
        return json.dumps(dict(base, tenant="no-such-bank")).encode(), "unknown_tenant"
    if kind == "alg":
        return json.dumps(dict(base, hash_alg="md5")).encode(), "algorithm_not_accepted"
    if kind == "hex":
        return json.dumps(dict(base, hash="zz" + base["hash"][2:])).encode(), "bad_hash_hex"
    if kind == "length":
        return json.dumps(dict(base, hash=base["hash"][:62])).encode(), "bad_hash_length"
    raise ValueError(kind)


KINDS = ["oversized", "not_json", "dup_key", "tombstone", "missing_v", "v2", "v_string",
         "tenant", "alg", "hex", "length"]
i = 0
start = time.monotonic()
while not os.path.exists(stop_path):
    resend_failed()
    # Pace: message i goes out at start + i / rate.
    due = start + i / rate
    now = time.monotonic()
    if due > now:
        producer.poll(min(due - now, 0.05))
        continue
    ext = f"chaos-{seed}-{i:08d}"
    tenant = TENANTS[i % len(TENANTS)]
    digest = hashlib.sha256(ext.encode()).hexdigest()
    roll = rng.random()
    if roll < 0.06:
        kind = KINDS[i % len(KINDS)]
        value, reason = malformed(i, kind)
        send(ext.encode(), value, {"id": i, "kind": "malformed", "case": kind,
                                   "reason": reason, "payload": b64(value)})
    elif roll < 0.08 and acked_valid:
        # A conflict: an acknowledged valid message's external id again under
        # another hash. Same key, so the same partition, after its original.
        j = acked_valid[rng.randrange(len(acked_valid))]
        cext = f"chaos-{seed}-{j:08d}"
        ctenant = TENANTS[j % len(TENANTS)]
        other = hashlib.sha256(f"other-{i}".encode()).hexdigest()
        value = valid(i, ctenant, cext, other)
        send(cext.encode(), value, {"id": i, "kind": "conflict", "of": j, "reason": "conflict",
                                    "tenant": ctenant, "external_id": cext,
                                    "payload": b64(value)})
    elif roll < 0.10 and acked_valid:
        # A resend (upper-case hex) of an acknowledged message: a duplicate.
        j = acked_valid[rng.randrange(len(acked_valid))]
        cext = f"chaos-{seed}-{j:08d}"
        ctenant = TENANTS[j % len(TENANTS)]
        value = valid(i, ctenant, cext, hashlib.sha256(cext.encode()).hexdigest(), upper=True)
        send(cext.encode(), value, {"id": i, "kind": "resend", "of": j,
                                    "tenant": ctenant, "external_id": cext})
    else:
        send(ext.encode(), valid(i, tenant, ext, digest),
             {"id": i, "kind": "valid", "tenant": tenant, "external_id": ext, "hash": digest})
    i += 1
    producer.poll(0)

deadline = time.monotonic() + 300
left = producer.flush(300)
while retry and time.monotonic() < deadline:
    resend_failed()
    time.sleep(0.5)
    left = producer.flush(max(1, deadline - time.monotonic()))
manifest.close()
print(json.dumps({"sent": i, "unflushed": left}), flush=True)
