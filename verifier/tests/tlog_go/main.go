// A tlog-tiles reader built on the Go project's own transparency-log code,
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog (Debian's
// golang-golang-x-mod-dev), sharing no code with Anchord: the reference
// implementation of signed notes and of tiled RFC 6962 logs.
//
//	go run main.go <prefix URL> <vkey> <old size> <entry index>...
//
// It fetches <prefix>/checkpoint and opens the note with the verifier key
// (note.Open: the signature of that key must verify; other signers, such as
// witnesses, are left unverified). It then reads the tree through
// tlog.TileHashReader, which checks every tile it loads against the signed
// root, recomputes the root, proves the tree consistent with its first
// <old size> entries (tlog.ProveTree / CheckTree), and, for each entry index,
// fetches the entry bundle holding it and checks the entry's inclusion
// (tlog.ProveRecord / CheckRecord, leaf = tlog.RecordHash(entry)).
//
// The tile paths are C2SP tlog-tiles paths: tlog.Tile.Path() with the
// height segment dropped ("tile/8/0/x001/234" is "tile/0/x001/234"), and
// "entries" for the data level. Prints one line
// "OK size=<n> root=<hex> entries=<k> tiles=<fetched>"; exits 1 with
// "FAIL <reason>" otherwise.
package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

var client = &http.Client{Timeout: 30 * time.Second}

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func get(url string) []byte {
	r, err := client.Get(url)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	if r.StatusCode != http.StatusOK {
		fail("GET %s: status %d", url, r.StatusCode)
	}
	return body
}

// c2spPath is the tlog-tiles path of t: Go's sumdb path without its height
// segment, with "entries" for the data level.
func c2spPath(t tlog.Tile) string {
	p := t.Path()
	if t.L == -1 {
		return "tile/entries/" + strings.TrimPrefix(p, fmt.Sprintf("tile/%d/data/", height))
	}
	return "tile/" + strings.TrimPrefix(p, fmt.Sprintf("tile/%d/", height))
}

type tiles struct {
	prefix  string
	fetched int
}

func (r *tiles) Height() int { return height }

func (r *tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		out[i] = get(r.prefix + "/" + c2spPath(t))
		r.fetched++
	}
	return out, nil
}

func (r *tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func main() {
	if len(os.Args) < 4 {
		fail("usage: main.go <prefix URL> <vkey> <old size> <entry index>...")
	}
	prefix := strings.TrimRight(os.Args[1], "/")
	verifier, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fail("verifier key: %v", err)
	}
	old, err := strconv.ParseInt(os.Args[3], 10, 64)
	if err != nil {
		fail("old size: %v", err)
	}

	// The checkpoint: a signed note whose text is origin, size, root hash
	// and optional extension lines (c2sp.org/tlog-checkpoint).
	n, err := note.Open(get(prefix+"/checkpoint"), note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint note: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] == "" {
		fail("checkpoint text: %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("checkpoint size %q", lines[1])
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		fail("checkpoint root %q", lines[2])
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	tree := tlog.Tree{N: size, Hash: root}

	reader := &tiles{prefix: prefix}
	hashes := tlog.TileHashReader(tree, reader)
	got, err := tlog.TreeHash(size, hashes)
	if err != nil {
		fail("root from tiles: %v", err)
	}
	if got != root {
		fail("root from tiles %x, checkpoint %x", got[:], root[:])
	}

	if old < 0 || old > size {
		fail("old size %d outside 0..%d", old, size)
	}
	if old > 0 {
		oldRoot, err := tlog.TreeHash(old, hashes)
		if err != nil {
			fail("root of the first %d: %v", old, err)
		}
		proof, err := tlog.ProveTree(size, old, hashes)
		if err != nil {
			fail("consistency proof %d..%d: %v", old, size, err)
		}
		if err := tlog.CheckTree(proof, size, root, old, oldRoot); err != nil {
			fail("consistency %d..%d: %v", old, size, err)
		}
	}

	for _, arg := range os.Args[4:] {
		index, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || index < 0 || index >= size {
			fail("entry index %q outside 0..%d", arg, size-1)
		}
		bundle := tlog.Tile{H: height, L: -1, N: index >> height, W: 1 << height}
		if rest := size - bundle.N<<height; rest < 1<<height {
			bundle.W = int(rest)
		}
		data := get(prefix + "/" + c2spPath(bundle))
		// c2sp.org/tlog-tiles entry bundle: each entry a big-endian uint16
		// length, then its bytes.
		var entry []byte
		for k := int64(0); ; k++ {
			if len(data) < 2 {
				fail("entry bundle %s: entry %d missing", c2spPath(bundle), k)
			}
			l := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+l {
				fail("entry bundle %s: entry %d truncated", c2spPath(bundle), k)
			}
			if k == index-bundle.N<<height {
				entry = data[2 : 2+l]
				break
			}
			data = data[2+l:]
		}
		proof, err := tlog.ProveRecord(size, index, hashes)
		if err != nil {
			fail("inclusion proof of %d: %v", index, err)
		}
		if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(entry)); err != nil {
			fail("inclusion of %d: %v", index, err)
		}
	}
	fmt.Printf("OK size=%d root=%s entries=%d tiles=%d\n", size, hex.EncodeToString(root[:]), len(os.Args)-4, reader.fetched)
}
