package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

var apiClient = func() *http.Client {
	c := rawClient()
	c.Timeout = 600 * time.Second
	return c
}()

// apiCall sends method url with a JSON body (nil: none) and token auth; it returns the status and
// body, and an error for transport failures or a status outside 2xx.
func apiCall(method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, b, fmt.Errorf("%s %s: status %d: %.300s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, b, nil
}

// createUsers creates users through POST /hub/api/users in batches.
func (h *hub) createUsers(names []string, batch int) error {
	for len(names) > 0 {
		n := min(batch, len(names))
		if _, _, err := apiCall("POST", h.public+"/hub/api/users", adminToken, map[string]any{"usernames": names[:n]}); err != nil {
			return err
		}
		names = names[n:]
	}
	return nil
}

// serverAnswers reports whether /user/<name>/ answers 200 with the test server's JSON through the
// public port (no redirects followed).
func serverAnswers(c *http.Client, base, name string) bool {
	resp, err := c.Get(base + "/user/" + name + "/")
	if err != nil {
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200 && bytes.Contains(b, []byte(`"pid"`))
}
