// A second, independent implementation of C2SP tlog-cosignature
// (cosignature/v1, Ed25519) on top of Go's golang.org/x/mod/sumdb/note,
// for tests/tests/witness_go.rs:
//
//	go run cosignature.go verify VKEY NOTE_FILE   prints "ok TIMESTAMP" when note.Open accepts the witness's cosignature
//	go run cosignature.go cosign NAME SEED_HEX TIMESTAMP NOTE_FILE   prints the vkey, then a cosignature line
//
// Build with GO111MODULE=off GOPATH=/usr/share/gocode (Debian's
// golang-golang-x-mod-dev). sumdb/note's own NewVerifier knows only type
// 0x01, so the cosigner is a note.Verifier written here from the spec.
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

const algCosignatureV1 = 0x04

func keyHash(name string, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

func message(ts uint64, text []byte) []byte {
	return append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", ts)), text...)
}

type cosigner struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
	ts   uint64
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }
func (c *cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if ts > 1<<63-1 || !ed25519.Verify(c.pub, message(ts, msg), sig[8:]) {
		return false
	}
	c.ts = ts
	return true
}

func parseVkey(vkey string) (*cosigner, error) {
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("not a cosignature/v1 key")
	}
	h := keyHash(parts[0], raw[1:])
	if fmt.Sprintf("%08x", h) != parts[1] {
		return nil, fmt.Errorf("key ID %s does not match (computed %08x)", parts[1], h)
	}
	return &cosigner{name: parts[0], hash: h, pub: ed25519.PublicKey(raw[1:])}, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cosignature.go:", err)
	os.Exit(1)
}

func main() {
	switch {
	case len(os.Args) == 4 && os.Args[1] == "verify":
		c, err := parseVkey(os.Args[2])
		if err != nil {
			fail(err)
		}
		msg, err := os.ReadFile(os.Args[3])
		if err != nil {
			fail(err)
		}
		n, err := note.Open(msg, note.VerifierList(c))
		if err != nil {
			fail(err)
		}
		fmt.Printf("ok %d %d\n", c.ts, len(n.Sigs))
	case len(os.Args) == 6 && os.Args[1] == "cosign":
		seed, err := hex.DecodeString(os.Args[3])
		if err != nil || len(seed) != ed25519.SeedSize {
			fail(fmt.Errorf("seed: 64 hex digits"))
		}
		ts, err := strconv.ParseUint(os.Args[4], 10, 63)
		if err != nil {
			fail(err)
		}
		msg, err := os.ReadFile(os.Args[5])
		if err != nil {
			fail(err)
		}
		text := string(msg)
		i := strings.LastIndex(text, "\n\n")
		if i < 0 {
			fail(fmt.Errorf("no signatures"))
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		name := os.Args[2]
		h := keyHash(name, pub)
		sig := ed25519.Sign(priv, message(ts, []byte(text[:i+1])))
		raw := make([]byte, 4, 4+8+len(sig))
		binary.BigEndian.PutUint32(raw, h)
		raw = binary.BigEndian.AppendUint64(raw, ts)
		raw = append(raw, sig...)
		fmt.Printf("%s+%08x+%s\n", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
		fmt.Printf("\u2014 %s %s\n", name, base64.StdEncoding.EncodeToString(raw))
	default:
		fail(fmt.Errorf("usage: verify VKEY NOTE | cosign NAME SEED_HEX TIMESTAMP NOTE"))
	}
}
