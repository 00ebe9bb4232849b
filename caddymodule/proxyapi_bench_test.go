package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

// BenchmarkProxyAPIAdd adds routes through the HTTP API with 10 concurrent
// clients (JupyterHub's concurrency), memory only: the API's own cost.
func BenchmarkProxyAPIAdd(b *testing.B) {
	table := routetable.New()
	srv := httptest.NewServer(NewProxyAPI(table, testToken, nil))
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 10}}
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				body := fmt.Sprintf(`{"target":"http://127.0.0.1:9000","jupyterhub":true,"user":"user%d","server_name":""}`, i)
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/routes/user/user%d", srv.URL, i), strings.NewReader(body))
				req.Header.Set("Authorization", "token "+testToken)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
}
