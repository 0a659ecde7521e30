"""A tlog-tiles client written from the C2SP specifications alone
(c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint, c2sp.org/signed-note and
RFC 6962 / RFC 9162), sharing no code with Anchord.

    python tlog_client.py <prefix URL> <vkey> <entry index>

Fetches <prefix>/checkpoint, verifies the log's Ed25519 signature with the
verifier key, fetches the tiles it needs, recomputes the root of the
checkpoint's tree, fetches the entry bundle holding <entry index>, checks the
entry hashes to its level-0 tile hash, computes the entry's inclusion proof
from tiles and verifies it the RFC 9162 way. Prints one line
`OK size=<n> root=<hex> entry=<i> tiles=<fetched>`; exits 1 with the reason
otherwise. Standard library plus pycryptodomex (Ed25519).
"""

import base64
import hashlib
import sys
import urllib.error
import urllib.request

from Cryptodome.Signature import eddsa


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict((k.lower(), v) for k, v in e.headers.items()), e.read()


# --- signed note (c2sp.org/signed-note) ----------------------------------

def parse_vkey(vkey):
    name, key_hash, key = vkey.split("+", 2)
    raw = base64.b64decode(key)
    if raw[0] != 0x01 or len(raw) != 33:
        fail("not an Ed25519 verifier key")
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_id.hex() != key_hash:
        fail("verifier key hash does not match")
    return name, key_id, raw[1:]


def verify_note(note, vkey):
    name, key_id, pub = parse_vkey(vkey)
    text, sep, sigs = note.partition("\n\n")
    if not sep:
        fail("note has no signature block")
    text += "\n"
    verifier = eddsa.new(eddsa.import_public_key(pub), "rfc8032")
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail("bad signature line %r" % line)
        sig_name, b64 = line[2:].split(" ")
        blob = base64.b64decode(b64)
        if sig_name == name and blob[:4] == key_id:
            try:
                verifier.verify(text.encode(), blob[4:])
            except ValueError:
                fail("the log's signature does not verify")
            return text
    fail("no signature by %s" % name)


def parse_checkpoint(text):
    lines = text.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2])
    if len(root) != 32 or str(size) != lines[1]:
        fail("malformed checkpoint body")
    return origin, size, root


# --- RFC 6962 ----------------------------------------------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth_list(hashes):
    """MTH over a list of subtree hashes that are the leaves of a subtree."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(mth_list(hashes[:k]), mth_list(hashes[k:]))


# --- tiles (c2sp.org/tlog-tiles) ---------------------------------------------

def index_path(n):
    parts = ["%03d" % (n % 1000)]
    n //= 1000
    while n > 0:
        parts.append("x%03d" % (n % 1000))
        n //= 1000
    return "/".join(reversed(parts))


class Tiles:
    def __init__(self, prefix, size):
        self.prefix, self.size, self.cache, self.fetched = prefix, size, {}, 0

    def width(self, level, index):
        n = self.size // (256 ** level)
        return min(256, n - index * 256)

    def tile(self, level, index):
        key = (level, index)
        if key not in self.cache:
            w = self.width(level, index)
            if w <= 0:
                fail("tile %d/%d is not in the tree" % key)
            path = "tile/%d/%s" % (level, index_path(index))
            if w < 256:
                path += ".p/%d" % w
            status, headers, body = get(self.prefix + "/" + path)
            if status != 200:
                fail("%s: HTTP %d" % (path, status))
            if len(body) != 32 * w:
                fail("%s: %d bytes, want %d" % (path, len(body), 32 * w))
            cc = headers.get("cache-control", "")
            if w == 256 and "immutable" not in cc:
                fail("%s: full tile without an immutable Cache-Control (%r)" % (path, cc))
            self.fetched += 1
            self.cache[key] = [body[i:i + 32] for i in range(0, len(body), 32)]
        return self.cache[key]

    def subtree(self, lo, hi):
        """MTH(D[lo:hi]) for an RFC 6962 subtree of the tree."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            height = n.bit_length() - 1
            level, rest = divmod(height, 8)
            first = lo >> (8 * level)
            count = 1 << rest
            t = self.tile(level, first // 256)
            off = first % 256
            return mth_list(t[off:off + count])
        k = 1
        while k * 2 < n:
            k *= 2
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def inclusion_proof(self, m):
        """PATH(m, D[0:n]) of RFC 9162 2.1.3.1."""
        def path(m, lo, hi):
            if hi - lo == 1:
                return []
            k = 1
            while k * 2 < hi - lo:
                k *= 2
            if m < k:
                return path(m, lo, lo + k) + [self.subtree(lo + k, hi)]
            return path(m - k, lo + k, hi) + [self.subtree(lo, lo + k)]
        return path(m, 0, self.size)


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def main():
    prefix, vkey, entry = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
    status, headers, body = get(prefix + "/checkpoint")
    if status != 200 or not headers.get("content-type", "").startswith("text/plain"):
        fail("checkpoint: HTTP %d %s" % (status, headers.get("content-type")))
    text = verify_note(body.decode(), vkey)
    origin, size, root = parse_checkpoint(text)
    if entry >= size:
        fail("entry %d beyond size %d" % (entry, size))
    tiles = Tiles(prefix, size)
    got = tiles.subtree(0, size)
    if got != root:
        fail("tiles give root %s, the checkpoint says %s" % (got.hex(), root.hex()))
    # The entry bundle holding the entry.
    n = entry // 256
    w = tiles.width(0, n)
    path = "tile/entries/" + index_path(n) + ("" if w == 256 else ".p/%d" % w)
    status, headers, bundle = get(prefix + "/" + path)
    if status != 200:
        fail("%s: HTTP %d" % (path, status))
    entries, p = [], 0
    while p < len(bundle):
        ln = int.from_bytes(bundle[p:p + 2], "big")
        entries.append(bundle[p + 2:p + 2 + ln])
        p += 2 + ln
    if len(entries) != w or p != len(bundle):
        fail("%s: %d entries, want %d" % (path, len(entries), w))
    level0 = tiles.tile(0, n)
    for i, e in enumerate(entries):
        if leaf_hash(e) != level0[i]:
            fail("%s: entry %d does not hash to its level-0 tile hash" % (path, i))
    leaf = leaf_hash(entries[entry % 256])
    proof = tiles.inclusion_proof(entry)
    if not verify_inclusion(entry, size, leaf, proof, root):
        fail("inclusion proof of entry %d does not verify" % entry)
    print("OK size=%d root=%s entry=%d tiles=%d origin=%s" % (size, root.hex(), entry, tiles.fetched, origin))


if __name__ == "__main__":
    main()
