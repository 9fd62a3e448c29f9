// The root of a file's lines with Go's golang.org/x/mod/sumdb/tlog, the
// comparison `stele bench verify` runs:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run scripts/bench/tlogroot.go ENTRIES.jsonl
//
// Each line without its "\n" is a record (tlog.RecordHash is RFC 9162's leaf
// hash); the stored hashes are kept in memory as tlog's own servers keep them
// on disk. Prints the record count and the root in base64.
package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	in := bufio.NewReaderSize(f, 1<<20)
	var n int64
	for {
		line, err := in.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			fmt.Fprintf(os.Stderr, "record %d: a line longer than 1 MiB\n", n)
			os.Exit(1)
		}
		if len(line) == 0 && err != nil {
			break
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		hs, herr := tlog.StoredHashes(n, line, reader)
		if herr != nil {
			fmt.Fprintln(os.Stderr, herr)
			os.Exit(1)
		}
		stored = append(stored, hs...)
		n++
		if err != nil {
			break
		}
	}
	root, err := tlog.TreeHash(n, reader)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(n, base64.StdEncoding.EncodeToString(root[:]))
}
