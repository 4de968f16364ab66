package challenge

import (
	"testing"
	"time"
)

// BenchmarkVerifyPass is the cost added to every challenged request that
// carries a pass.
func BenchmarkVerifyPass(b *testing.B) {
	kr := mustKeyring(b, "k2:"+testKey2+",k1:"+testKey1)
	v := mustPass(b, kr, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyPass(kr, v, testNow, testNet, testHost); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassForged(b *testing.B) {
	kr := mustKeyring(b, "k1:"+testKey1)
	v := mustPass(b, kr, time.Hour)
	v = v[:len(v)-2] + "AA"
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyPass(kr, v, testNow, testNet, testHost); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkCookieValue(b *testing.B) {
	h := "_ga=GA1.2.123456789.1700000000; theme=dark; session=abcdef0123456789; ipveil_pass=AgJrMQAAAABp9KQQDjIwMy4wLjExMy4wLzI0DHNob3AuZXhhbXBsZQ.x"
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := CookieValue(h, DefaultCookieName); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkIssuePass(b *testing.B) {
	kr := mustKeyring(b, "k1:"+testKey1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := IssuePass(kr, testNow, time.Hour, testNet, testHost); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	kr := mustKeyring(b, "k1:"+testKey1)
	p := testParams(18)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Issue(kr, testNow, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	kr := mustKeyring(b, "k1:"+testKey1)
	tok := mustIssue(b, kr, testParams(8))
	nonce := Solve(tok, 8)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(kr, nil, tok, nonce, testNow, testNet, testHost); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderPage(b *testing.B) {
	kr := mustKeyring(b, "k1:"+testKey1)
	tok := mustIssue(b, kr, testParams(18))
	tm, _ := CompileTemplate("")
	b.ReportAllocs()
	for b.Loop() {
		tm.Render(PageData{Token: tok, Difficulty: 18, ReturnPath: "/cart?item=7"})
	}
}

// BenchmarkSolve16 measures native solving (one op = one puzzle of
// difficulty 16, 65536 hashes expected): what a bot pays, compared with a
// browser's million hashes a second.
func BenchmarkSolve16(b *testing.B) {
	kr := mustKeyring(b, "k1:"+testKey1)
	var toks []string
	for range 64 {
		toks = append(toks, mustIssue(b, kr, testParams(16)))
	}
	i := 0
	for b.Loop() {
		Solve(toks[i%len(toks)], 16)
		i++
	}
}
