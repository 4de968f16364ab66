package challenge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNodeSolver runs the page's script under Node: its SHA-256 must match
// crypto/sha256 at every block boundary, its nonces must pass Verify, and
// the rendered page must find and submit a nonce by itself.
func TestNodeSolver(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the challenge page's JavaScript solver is not tested (install Node.js to run this test)")
	}
	if testing.Short() {
		t.Skip("-short: skipping the Node.js solver test")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:~ !\"#$%&'()*+,/;<=>?@[]^`{|}"
	randStr := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = chars[rng.IntN(len(chars))]
		}
		return string(b)
	}
	var digests [][2]string
	for n := 0; n <= 200; n++ {
		digests = append(digests, [2]string{randStr(n), ""})
	}
	for _, n := range []int{1000, 4095, 4096, 4097, 10000} {
		digests = append(digests, [2]string{randStr(n), ""})
	}
	for p := 0; p < 140; p++ {
		for _, s := range []int{1, 7, 20, 55} {
			digests = append(digests, [2]string{randStr(p), randStr(s)})
		}
	}

	kr := mustKeyring(t, "k1:"+testKey1)
	type puzzle struct {
		token string
		d     int
	}
	var puzzles []puzzle
	var jsPuzzles [][]any
	for i := 0; i < 24; i++ {
		p := testParams(1 + i%14)
		p.ReturnPath = "/" + strings.Repeat("x", rng.IntN(200)) // vary the token length across block boundaries
		tok := mustIssue(t, kr, p)
		puzzles = append(puzzles, puzzle{tok, p.Difficulty})
		jsPuzzles = append(jsPuzzles, []any{tok, p.Difficulty})
	}
	pagePuzzle := mustIssue(t, kr, testParams(12))
	page, err := RenderPage(PageData{Token: pagePuzzle, Difficulty: 12, Title: "T"}, "")
	if err != nil {
		t.Fatal(err)
	}

	in, _ := json.Marshal(map[string]any{"script": powJS, "digests": digests, "puzzles": jsPuzzles, "page": string(page)})
	inFile := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(inFile, in, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("testdata", "node_harness.js"), inFile)
	cmd.Stderr = os.Stderr
	outBytes, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var out struct {
		Digests    []string `json:"digests"`
		Nonces     []string `json:"nonces"`
		PageNonce  string   `json:"pageNonce"`
		PageAction string   `json:"pageAction"`
	}
	if err := json.Unmarshal(outBytes, &out); err != nil {
		t.Fatalf("node output %.200q: %v", outBytes, err)
	}
	if len(out.Digests) != len(digests) || len(out.Nonces) != len(puzzles) {
		t.Fatalf("node answered %d digests and %d nonces", len(out.Digests), len(out.Nonces))
	}
	for i, d := range digests {
		sum := sha256.Sum256([]byte(d[0] + d[1]))
		if want := hex.EncodeToString(sum[:]); out.Digests[i] != want {
			t.Errorf("SHA-256 of %d+%d bytes: JS %s, Go %s", len(d[0]), len(d[1]), out.Digests[i], want)
		}
	}
	g := NewMemoryReplayGuard(64)
	for i, p := range puzzles {
		if _, err := Verify(kr, g, p.token, out.Nonces[i], testNow, testNet, testHost); err != nil {
			t.Errorf("puzzle %d (difficulty %d, %d bytes): JS nonce %q: %v", i, p.d, len(p.token), out.Nonces[i], err)
		}
		if want := Solve(p.token, p.d); out.Nonces[i] != want {
			t.Errorf("puzzle %d: JS found %s, Go's Solve %s; both must try 0, 1, 2, …", i, out.Nonces[i], want)
		}
	}
	if _, err := Verify(kr, g, pagePuzzle, out.PageNonce, testNow.Add(time.Minute), testNet, testHost); err != nil {
		t.Errorf("page: submitted nonce %q: %v", out.PageNonce, err)
	}
	if out.PageAction != DefaultVerifyPath {
		t.Errorf("page posts to %q", out.PageAction)
	}
}
