package main

import (
	"fmt"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// loginPool is how many distinct users the login clients cycle through; each logs in once before
// measuring, so the measurement is of logins, not of user creation.
const loginPool = 100

func loginName(i int) string { return fmt.Sprintf("login%03d", i%loginPool) }

// loginRate runs clients concurrent loops of GET + POST /hub/login for d and returns logins/s.
func loginRate(base string, clients int, d time.Duration) (float64, int64, error) {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: clients}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer tr.CloseIdleConnections()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; time.Now().Before(stop); n += clients {
				if err := loginOnce(c, base, loginName(n)); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	rate := float64(ok.Load()) / time.Since(began).Seconds()
	if e := firstErr.Load(); e != nil {
		return rate, failed.Load(), fmt.Errorf("%d failed logins, first: %s", failed.Load(), e)
	}
	return rate, 0, nil
}

// benchLogins is scenario 4: logins/s with the dummy authenticator, hubs alternating per round.
func benchLogins(ours, jh *hub, rounds int, res *readyResult) error {
	res.logins = map[string][]float64{}
	for _, h := range []*hub{ours, jh} {
		c := rawClient()
		for i := range loginPool {
			if err := loginOnce(c, h.public, loginName(i)); err != nil {
				return fmt.Errorf("%s: warm-up login: %w", h.name, err)
			}
		}
	}
	for r := 1; r <= rounds; r++ {
		order := []*hub{ours, jh}
		if r%2 == 0 {
			order = []*hub{jh, ours}
		}
		for _, h := range order {
			rate, _, err := loginRate(h.public, *loginClientsFlag, *loginDurationFlag)
			if err != nil {
				msg := fmt.Sprintf("%s logins round %d: %v", h.name, r, err)
				log.Print(msg)
				res.errs = append(res.errs, msg)
			}
			log.Printf("logins round %d: %-15s %.0f logins/s (%d clients)", r, h.name, rate, *loginClientsFlag)
			res.logins[h.name] = append(res.logins[h.name], rate)
		}
	}
	return nil
}
