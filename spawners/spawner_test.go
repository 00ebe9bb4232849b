package spawners

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestWaitHTTP(t *testing.T) {
	answering := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound) // any answer counts; not followed
	}))
	t.Cleanup(answering.Close)
	// A port nobody listens on: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/"
	l.Close()

	closed := make(chan struct{})
	close(closed)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name  string
		ctx   context.Context
		url   string
		gone  chan struct{}
		after time.Duration
		want  error
	}{
		{"answers", context.Background(), answering.URL + "/user/a/", nil, 5 * time.Second, nil},
		{"never answers", context.Background(), refused, nil, 100 * time.Millisecond, ErrHTTPTimeout},
		{"process gone", context.Background(), refused, closed, 5 * time.Second, ErrExitedEarly},
		{"gone wins over an answer", context.Background(), answering.URL, closed, 5 * time.Second, ErrExitedEarly},
		{"context ended", cancelled, refused, nil, 5 * time.Second, context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := WaitHTTP(c.ctx, c.url, c.gone, time.Now().Add(c.after))
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("WaitHTTP = %v, want %v", err, c.want)
			}
		})
	}
}

func TestReportLaunched(t *testing.T) {
	srv := &Server{URL: "http://127.0.0.1:1"}
	var nilReq *StartRequest
	if err := nilReq.ReportLaunched(srv); err != nil {
		t.Fatalf("nil request: %v", err)
	}
	if err := (&StartRequest{}).ReportLaunched(srv); err != nil {
		t.Fatalf("no Launched: %v", err)
	}
	boom := errors.New("boom")
	var got *Server
	req := &StartRequest{Launched: func(s *Server) error { got = s; return boom }}
	if err := req.ReportLaunched(srv); !errors.Is(err, boom) || got != srv {
		t.Fatalf("ReportLaunched = %v, passed %v", err, got)
	}
}

// TestReadyPollCap: one start is probed every 5 ms at most; many at once back off to 20 ms.
func TestReadyPollCap(t *testing.T) {
	for _, tc := range []struct {
		waiters int64
		want    time.Duration
	}{
		{0, 5 * time.Millisecond},
		{1, 5 * time.Millisecond},
		{25, 5 * time.Millisecond},
		{50, 10 * time.Millisecond},
		{100, 20 * time.Millisecond},
		{5000, 20 * time.Millisecond},
	} {
		if got := readyPollCap(tc.waiters); got != tc.want {
			t.Errorf("readyPollCap(%d) = %s, want %s", tc.waiters, got, tc.want)
		}
	}
}
