// Reads a C2SP tlog-tiles log over HTTP with Go's reference implementation
// (golang.org/x/mod/sumdb/tlog) and prints the tree hash of SIZE in base64.
// TileHashReader checks every tile it reads against ROOT (the checkpoint's),
// so a tile that does not belong to that tree is an error.
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run tlogroot.go BASE_URL SIZE ROOT_B64
package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

type reader struct{ base string }

func (r reader) Height() int { return 8 }

func (r reader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		// sumdb paths are tile/H/L/N; C2SP tlog-tiles drops the height.
		p := strings.Replace(t.Path(), "tile/8/", "tile/", 1)
		resp, err := http.Get(r.base + "/" + p)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %s", p, resp.Status)
		}
		out[i] = b
	}
	return out, nil
}

func (r reader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func main() {
	size, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil {
		panic(err)
	}
	raw, err := base64.StdEncoding.DecodeString(os.Args[3])
	if err != nil || len(raw) != 32 {
		panic("bad root")
	}
	var root tlog.Hash
	copy(root[:], raw)
	hr := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, reader{os.Args[1]})
	h, err := tlog.TreeHash(size, hr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(base64.StdEncoding.EncodeToString(h[:]))
}
