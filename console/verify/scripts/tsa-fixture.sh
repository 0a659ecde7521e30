#!/usr/bin/env bash
# Make RFC 3161 fixtures with Debian's `openssl ts` as the time-stamp
# authority: for the corpus bundle valid/anchored-judicial-evm.json, a
# bundle whose checkpoint carries a token over SHA-256(checkpoint body)
# from an RSA TSA and one from an ECDSA P-256 TSA, a bundle whose token is
# over another digest, and the corpus trust policy with each TSA
# certificate inline. Used by console/verify's vitest and the Rust
# cross-verifier test. Usage: tsa-fixture.sh OUTDIR
set -euo pipefail
out=${1:?usage: tsa-fixture.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/../../../testdata/bundles
mkdir -p "$out"
cd "$out"
python3 - "$corpus/valid/anchored-judicial-evm.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
note = b["checkpoint"]["signed_note"]
open("body.txt", "w").write(note[: note.rindex("\n\n") + 1])
open("other.txt", "w").write("not the checkpoint body\n")
PY
cat > ts.cnf <<'CNF'
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = ./serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1, millisecs:500
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
echo 01 > serial
for alg in rsa ec; do
  if [ $alg = rsa ]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
  openssl req -x509 "${newkey[@]}" -nodes -keyout $alg.key -out $alg.pem -days 3650 -subj "/CN=anchord test TSA $alg" \
    -addext "extendedKeyUsage=critical,timeStamping" 2>/dev/null
  for what in body other; do
    openssl ts -query -data $what.txt -sha256 -cert -out $what-$alg.tsq 2>/dev/null
    openssl ts -reply -queryfile $what-$alg.tsq -signer $alg.pem -inkey $alg.key -config ts.cnf -token_out -out $what-$alg.tok 2>/dev/null
  done
done
python3 - "$corpus" <<'PY'
import json, sys
corpus = sys.argv[1]
b = json.load(open(corpus + "/valid/anchored-judicial-evm.json"))
pol = open(corpus + "/trust-policy.toml").read()
for alg in ("rsa", "ec"):
    for what, name in (("body", "token"), ("other", "token-other-digest")):
        b["checkpoint"]["timestamp_token"] = open(f"{what}-{alg}.tok", "rb").read().hex()
        json.dump(b, open(f"bundle-{name}-{alg}.json", "w"), indent=2)
    pem = open(f"{alg}.pem").read()
    # inline PEM, as the page needs (a path works only on the command line)
    open(f"policy-{alg}.toml", "w").write(pol.replace("quorum = 2", "quorum = 2\ntsa_certs = [" + json.dumps(pem) + "]"))
PY
echo "$out"
