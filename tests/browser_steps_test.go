package tests

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserStep returns the step function the browser tests drive a page with: it runs actions
// within 60 s and, when they fail, saves a screenshot named shot in shots (none when shot is "")
// and ends the test naming the step, where the browser is and what about() adds (may be nil).
func browserStep(t *testing.T, ctx context.Context, shots, shot string, about func() string) func(what string, actions ...chromedp.Action[chromedp.Void]) {
	return func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			if shot != "" {
				failureShot(t, ctx, shots, shot)
			}
			extra := ""
			if about != nil {
				extra = "; " + about()
			}
			t.Fatalf("%s: %v (at %s%s)", what, err, browserLocation(ctx), extra)
		}
	}
}

// browserWaitFor returns the function that polls a JavaScript condition on the page until it holds,
// for at most timeout, reloading the page between tries when reload is set (a server-rendered
// page shows a server's new state only after a reload). A reload that clashes with one the page's
// own script started is left to the next try: the condition and its deadline decide. When the
// condition never holds it saves a screenshot named shot and ends the test.
func browserWaitFor(t *testing.T, ctx context.Context, shots, shot string) func(what, cond string, reload bool, timeout time.Duration) {
	return func(what, cond string, reload bool, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			ok, err := chromedp.Run(c, chromedp.Evaluate[bool](cond))
			cancel()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				failureShot(t, ctx, shots, shot)
				t.Fatalf("%s: not within %s (at %s; last error %v)", what, timeout, browserLocation(ctx), err)
			}
			if reload {
				rc, rcancel := context.WithTimeout(ctx, 20*time.Second)
				if _, err := chromedp.Run(rc, chromedp.Reload()); err != nil {
					t.Logf("reload: %v (polling on)", err)
				}
				rcancel()
			} else {
				time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
			}
		}
	}
}

// pollPage evaluates js in the tab until it returns a value of type T without throwing, retrying
// across navigations (a page being replaced has no context to evaluate in), until timeout.
func pollPage[T any](ctx context.Context, timeout time.Duration, js string) (T, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
		cancel()
		if err == nil || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}
