package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipveil/ipveil/e2e/internal/wasmtest"
	"github.com/ipveil/ipveil/e2e/mockrep"
	"github.com/ipveil/ipveil/e2e/stack"
)

// webDriver is the part of the W3C WebDriver protocol this test needs,
// spoken to Debian's chromedriver.
type webDriver struct {
	base    string
	session string
}

func (w *webDriver) call(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("webdriver %s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The real challenge page, in a real browser: headless Chromium gets the
// page, its script solves the puzzle, posts it, receives the pass cookie and
// lands on the original path. A screenshot is kept in build/test-artifacts.
func TestChallengePageSolvesItselfInChromium(t *testing.T) {
	chromium, err1 := exec.LookPath("chromium")
	driver, err2 := exec.LookPath("chromedriver")
	if err1 != nil || err2 != nil {
		t.Skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver; .ci/run does)")
	}
	s := stack.Start(t, stack.Options{Config: config(`"challenge": {"kind": "pow", "difficulty": 14}`)})
	// The browser connects from loopback without X-Forwarded-For, so the
	// client is 127.0.0.1: make that a medium-risk address.
	s.Mock.SetFixture("127.0.0.1", mockrep.Fixture{Status: 200, Body: json.RawMessage(`{"privacy":{"VPN":true,"Proxy":false,"Tor":false,"Relay":false,"Hosting":false},"risk":{"score":65}}`)})

	port := freePort(t)
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	w := &webDriver{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	stack.WaitFor(20*time.Second, func() bool {
		resp, err := http.Get(w.base + "/status")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	sess := w.call(t, "POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": chromium, "args": []string{
			"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--window-size=1000,700", "--user-data-dir=" + t.TempDir(),
		}},
	}}})
	w.session = sess["value"].(map[string]any)["sessionId"].(string)
	defer w.call(t, "DELETE", "/session/"+w.session, nil)

	start := s.URL + "/landing?from=chromium"
	w.call(t, "POST", "/session/"+w.session+"/url", map[string]any{"url": start})

	var current, source string
	landed := stack.WaitFor(60*time.Second, func() bool {
		current, _ = w.call(t, "GET", "/session/"+w.session+"/url", nil)["value"].(string)
		source, _ = w.call(t, "GET", "/session/"+w.session+"/source", nil)["value"].(string)
		return strings.Contains(source, `"method":"GET"`) && strings.Contains(source, "/landing?from=chromium")
	})
	shot, _ := w.call(t, "GET", "/session/"+w.session+"/screenshot", nil)["value"].(string)
	if png, err := base64.StdEncoding.DecodeString(shot); err == nil {
		dir := filepath.Join(wasmtest.Root(), "build", "test-artifacts")
		os.MkdirAll(dir, 0o755)
		p := filepath.Join(dir, "challenge-chromium.png")
		if err := os.WriteFile(p, png, 0o644); err == nil {
			t.Logf("screenshot: %s", p)
		}
	}
	if !landed {
		t.Fatalf("the browser did not land on the original path; at %s:\n%s\naccess log:\n%s", current, source, s.AccessLog.String())
	}
	u, _ := url.Parse(current)
	if u.Path != "/landing" || u.Query().Get("from") != "chromium" {
		t.Errorf("landed on %s", current)
	}
	cookies := w.call(t, "GET", "/session/"+w.session+"/cookie", nil)["value"].([]any)
	found := false
	for _, c := range cookies {
		found = found || c.(map[string]any)["name"] == "ipveil_pass"
	}
	if !found {
		t.Errorf("the browser holds no pass cookie: %v", cookies)
	}
	// The access log tells the story: challenged, solved, let through.
	log := s.AccessLog.String()
	for _, want := range []string{"\" 429 ", "/.ipveil/verify", "\" 303 ", "reason=challenge_passed"} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %q:\n%s", want, log)
		}
	}
}
