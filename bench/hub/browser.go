package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// browser is an HTTP client that behaves like a browser on the hub's pages: a cookie jar,
// redirects followed, keep-alive connections.
type browser struct {
	c    *http.Client
	base string // http://127.0.0.1:port
}

func newBrowser(base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{base: base, c: &http.Client{
		Jar:       jar,
		Transport: &http.Transport{Proxy: nil},
		Timeout:   120 * time.Second,
	}}
}

// page is a fetched page: final URL after redirects, status and body.
type page struct {
	url    *url.URL
	status int
	body   []byte
}

func (b *browser) do(req *http.Request) (*page, error) {
	resp, err := b.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &page{url: resp.Request.URL, status: resp.StatusCode, body: body}, nil
}

func (b *browser) get(path string) (*page, error) {
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		return nil, err
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, referer string) (*page, error) {
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", referer)
	return b.do(req)
}

var (
	formRe   = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRe = regexp.MustCompile(`<input[^>]*type="hidden"[^>]*>`)
	nameRe   = regexp.MustCompile(`name="([^"]*)"`)
	valueRe  = regexp.MustCompile(`value="([^"]*)"`)
)

// findForm returns the action and hidden fields of the first form whose action contains want.
func findForm(body []byte, want string) (string, url.Values, bool) {
	for _, m := range formRe.FindAllSubmatch(body, -1) {
		action := html.UnescapeString(string(m[1]))
		if !strings.Contains(action, want) {
			continue
		}
		vals := url.Values{}
		for _, in := range hiddenRe.FindAll(m[2], -1) {
			n, v := nameRe.FindSubmatch(in), valueRe.FindSubmatch(in)
			if n != nil {
				val := ""
				if v != nil {
					val = html.UnescapeString(string(v[1]))
				}
				vals.Set(string(n[1]), val)
			}
		}
		return action, vals, true
	}
	return "", nil, false
}

// loginTiming splits one login→ready run.
type loginTiming struct {
	login time.Duration // GET /hub/login → landed on spawn-pending (login + spawn request)
	wait  time.Duration // spawn-pending → progress says ready
	open  time.Duration // ready → /user/<name>/api/status 200 (OAuth dance included)
	total time.Duration
	// server is the single-user server's own start in this run: process start → answers HTTP.
	server time.Duration
}

// loginAndSpawn does what a browser does: GET /hub/login, POST it, submit the spawn form if the
// hub shows one (ours; JupyterHub 3.0 spawns on GET /hub/spawn), wait for the progress stream to
// say ready, load /user/<name>/ (OAuth redirects) and GET /user/<name>/api/status until 200.
func (b *browser) loginAndSpawn(name string, timeout time.Duration) (loginTiming, error) {
	var t loginTiming
	began := time.Now()
	deadline := began.Add(timeout)
	pg, err := b.get("/hub/login")
	if err != nil {
		return t, fmt.Errorf("GET /hub/login: %w", err)
	}
	_, form, ok := findForm(pg.body, "login")
	if !ok {
		form = url.Values{}
	}
	form.Set("username", name)
	form.Set("password", "bench")
	pg, err = b.post("/hub/login", form, b.base+"/hub/login")
	if err != nil {
		return t, fmt.Errorf("POST /hub/login: %w", err)
	}
	for range 3 {
		if strings.Contains(pg.url.Path, "/spawn-pending/") || strings.HasPrefix(pg.url.Path, "/user/") {
			break
		}
		action, vals, ok := findForm(pg.body, "/spawn")
		if !ok {
			return t, fmt.Errorf("after login at %s (status %d), no spawn form: %.300s", pg.url, pg.status, pg.body)
		}
		pg, err = b.post(action, vals, pg.url.String())
		if err != nil {
			return t, fmt.Errorf("POST %s: %w", action, err)
		}
	}
	if !strings.Contains(pg.url.Path, "/spawn-pending/") && !strings.HasPrefix(pg.url.Path, "/user/") {
		return t, fmt.Errorf("spawn did not reach spawn-pending: at %s (status %d)", pg.url, pg.status)
	}
	t.login = time.Since(began)
	if strings.Contains(pg.url.Path, "/spawn-pending/") {
		if err := b.waitProgress(name, pg.url.String(), deadline); err != nil {
			return t, err
		}
	}
	t.wait = time.Since(began) - t.login
	// The page's script now goes to the server: /user/<name>/ (→ OAuth → /tree or /lab). A spawn that
	// finished while the hub held the spawn request redirected there already: the browser has the
	// server's page, and loading it a second time would count one page render twice.
	onServer := pg.status == http.StatusOK && strings.HasPrefix(pg.url.Path, "/user/"+name+"/")
	for {
		if !onServer {
			if _, err := b.get("/user/" + name + "/"); err != nil {
				return t, fmt.Errorf("GET /user/%s/: %w", name, err)
			}
		}
		onServer = false
		pg, err := b.get("/user/" + name + "/api/status")
		if err != nil {
			return t, fmt.Errorf("GET /user/%s/api/status: %w", name, err)
		}
		if pg.status == 200 && pg.url.Path == "/user/"+name+"/api/status" && bytes.HasPrefix(bytes.TrimSpace(pg.body), []byte("{")) {
			break
		}
		if time.Now().After(deadline) {
			return t, fmt.Errorf("/user/%s/api/status: no 200 within %s; last %d at %s: %.300s", name, timeout, pg.status, pg.url, pg.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.total = time.Since(began)
	t.open = t.total - t.login - t.wait
	return t, nil
}

// waitProgress reads the spawn progress EventSource (cookie-authenticated, as the spawn-pending
// page does) until an event says ready or failed.
func (b *browser) waitProgress(name, referer string, deadline time.Time) error {
	req, err := http.NewRequest(http.MethodGet, b.base+"/hub/api/users/"+name+"/server/progress", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Referer", referer)
	c := *b.c
	c.Timeout = time.Until(deadline)
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("progress stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("progress stream: status %d: %.300s", resp.StatusCode, body)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		var ev struct {
			Ready   bool   `json:"ready"`
			Failed  bool   `json:"failed"`
			Message string `json:"message"`
		}
		if json.Unmarshal([]byte(strings.TrimSpace(data)), &ev) != nil {
			continue
		}
		if ev.Failed {
			return fmt.Errorf("spawn failed: %s", ev.Message)
		}
		if ev.Ready {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("progress stream: %w", err)
	}
	return errors.New("progress stream ended without ready")
}

// loginOnce is one GET /hub/login + POST /hub/login with a fresh cookie jar, redirects not
// followed. It succeeds on a 302 that sets a cookie.
func loginOnce(c *http.Client, base, name string) error {
	resp, err := c.Get(base + "/hub/login")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, form, ok := findForm(body, "login")
	if !ok {
		form = url.Values{}
	}
	form.Set("username", name)
	form.Set("password", "bench")
	req, _ := http.NewRequest(http.MethodPost, base+"/hub/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", base+"/hub/login")
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	resp, err = c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || len(resp.Cookies()) == 0 {
		return fmt.Errorf("POST /hub/login: status %d, %d cookies", resp.StatusCode, len(resp.Cookies()))
	}
	return nil
}
