package routetable

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func checkSlots(t *testing.T, s *slots, in []*Route, out []*Route) {
	t.Helper()
	if s.n != len(in) {
		t.Errorf("n = %d, want %d", s.n, len(in))
	}
	for _, r := range in {
		if got := s.get(r.tag, r.key); got != r {
			t.Errorf("get(%#x, %q) = %v, want the route", r.tag, r.key, got)
		}
	}
	for _, r := range out {
		if got := s.get(r.tag, r.key); got != nil {
			t.Errorf("get(%#x, %q) = %v, want nil", r.tag, r.key, got.key)
		}
	}
	seen := 0
	s.each(func(*Route) { seen++ })
	if seen != len(in) {
		t.Errorf("each visited %d routes, want %d", seen, len(in))
	}
}

func TestSlotsSharedTag(t *testing.T) {
	a := &Route{key: "/user/a", tag: 0x00070005}
	b := &Route{key: "/user/b", tag: 0x00070005}
	c := &Route{key: "/user/c", tag: 0x00070005}
	s, prev := emptySlots.with(a.tag, a.key, a)
	if prev != nil {
		t.Fatal("replaced a route in an empty table")
	}
	s, _ = s.with(b.tag, b.key, b)
	checkSlots(t, s, []*Route{a, b}, []*Route{c})
	// A third key with the same tag has the same two slots at any size:
	// it goes to the overflow list instead of growing the table forever.
	withC, _ := s.with(c.tag, c.key, c)
	checkSlots(t, withC, []*Route{a, b, c}, nil)
	if len(withC.overflow) != 1 {
		t.Errorf("%d routes in overflow, want 1", len(withC.overflow))
	}
	noC, prev := withC.with(c.tag, c.key, nil)
	if prev != c {
		t.Errorf("deleting c replaced %v", prev)
	}
	checkSlots(t, noC, []*Route{a, b}, []*Route{c})
	s2, prev := s.with(a.tag, a.key, nil)
	if prev != a {
		t.Errorf("deleting a replaced %v", prev)
	}
	checkSlots(t, s2, []*Route{b}, []*Route{a, c})
	checkSlots(t, s, []*Route{a, b}, []*Route{c}) // snapshots are immutable
	a2 := &Route{key: "/user/a", tag: a.tag}
	s3, prev := s.with(a2.tag, a2.key, a2)
	if prev != a {
		t.Errorf("replacing a replaced %v", prev)
	}
	checkSlots(t, s3, []*Route{a2, b}, nil)
}

// TestSlotsGrow puts more routes on the same two slots than two slots hold:
// the table grows, and what still does not fit goes to the overflow list;
// no route is lost.
func TestSlotsGrow(t *testing.T) {
	var routes []*Route
	for i := range 12 {
		// The same low bits in both halves: at small sizes every route
		// has the same pair of slots.
		routes = append(routes, &Route{key: fmt.Sprintf("/user/u%d", i), tag: uint32(i)<<24 | uint32(i)<<8 | 0x00030001})
	}
	s := buildSlots(routes)
	checkSlots(t, s, routes, []*Route{{key: "/user/x", tag: 0x00030001}})
	if len(s.entries) <= 4*len(routes) {
		t.Errorf("%d slots: the table did not grow", len(s.entries))
	}
}

func TestSlotsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var in, out []*Route
	for i := range 5000 {
		r := &Route{key: fmt.Sprintf("/user/u%d", i), tag: rng.Uint32()}
		if i%5 == 0 {
			out = append(out, r)
		} else {
			in = append(in, r)
		}
	}
	s := emptySlots
	for _, r := range in[:300] {
		s, _ = s.with(r.tag, r.key, r)
	}
	checkSlots(t, s, in[:300], append(out, in[300:]...))
	s = buildSlots(in)
	checkSlots(t, s, in, out)
	if len(s.entries) > 8*len(in) {
		t.Errorf("%d slots for %d routes", len(s.entries), len(in))
	}
}
