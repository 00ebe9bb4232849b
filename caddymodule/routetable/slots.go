package routetable

import "math/bits"

// slots is one shard's immutable snapshot of its routes: a cuckoo hash table
// indexed by the same 64-bit hash of the key that chose the shard. Every
// route sits in one of two slots fixed by its hash, so a lookup hashes its
// key once, reads two slots and compares one key, whatever the table holds
// and however keys collide; which slot to compare is picked without a
// branch. (A Go map hashes the key a second time once it holds more than
// eight entries, and with linear probing the keys that share a first slot
// cost a further probe and a mispredicted branch: both made a large table
// measurably dearer than a small one.) Writers build a new snapshot; readers
// never lock.
type slots struct {
	// tags[i] is entries[i].tag, kept apart so that choosing between the
	// two slots reads one small array and no route.
	tags    []uint32
	entries []*Route // nil: empty; length 0 or a power of two
	// overflow holds the routes that found no slot even after the table
	// grew: only keys whose hashes share both slots with two others, which
	// random hashing all but never produces. Usually nil.
	overflow []*Route
	n        int // routes held, overflow included
}

var emptySlots = &slots{}

// hashTag is the part of a key's hash that a route keeps (Route.tag): it
// fixes the route's two slots and is compared before the key. The hash's low
// bits chose the shard, so the tag is its high half.
func hashTag(hash uint64) uint32 { return uint32(hash >> 32) }

// slotsOf returns the two slots of tag in a table of size mask+1.
func slotsOf(tag, mask uint32) (uint32, uint32) {
	return tag & mask, (tag >> 16) & mask
}

// get returns the route stored under key, whose hash tag is tag, or nil.
func (s *slots) get(tag uint32, key string) *Route {
	if len(s.entries) == 0 {
		return nil
	}
	i1, i2 := slotsOf(tag, uint32(len(s.entries)-1))
	// i is i1 if the tag in i1 is tag, else i2, chosen without a branch
	// (which way it goes varies from key to key, so a branch would often be
	// mispredicted): d|-d has its top bit set unless d is 0.
	d := s.tags[i1] ^ tag
	other := uint32(int32(d|-d) >> 31) // all ones unless the tags match
	i := i1&^other | i2&other
	if r := s.entries[i]; r != nil && r.key == key {
		return r
	}
	if i == i1 { // another key with the same tag holds i1: rare
		if r := s.entries[i2]; r != nil && r.key == key {
			return r
		}
	}
	for _, r := range s.overflow {
		if r.tag == tag && r.key == key {
			return r
		}
	}
	return nil
}

// with returns a copy of s in which r's key holds r, or, when r is nil, in
// which key (of hash tag tag) holds no route; and the route it replaced.
func (s *slots) with(tag uint32, key string, r *Route) (*slots, *Route) {
	prev := s.get(tag, key)
	if prev == nil && r == nil {
		return s, nil
	}
	routes := make([]*Route, 0, s.n+1)
	s.each(func(e *Route) {
		if e != prev {
			routes = append(routes, e)
		}
	})
	if r != nil {
		routes = append(routes, r)
	}
	return buildSlots(routes), prev
}

// maxGrowths bounds how often buildSlots doubles the table for routes that
// do not fit before it puts the homeless ones in the overflow list.
const maxGrowths = 3

// buildSlots returns a table holding routes, whose keys are distinct and
// whose tags are set. It starts at most half full and doubles the size in
// the rare case that the routes do not fit.
func buildSlots(routes []*Route) *slots {
	if len(routes) == 0 {
		return emptySlots
	}
	size := 1 << bits.Len(uint(2*len(routes)-1)) // the power of two ≥ 2n
	for growths := 0; ; growths++ {
		s := &slots{tags: make([]uint32, size), entries: make([]*Route, size)}
		fits := true
		for _, r := range routes {
			if homeless := s.place(r); homeless != nil {
				if growths < maxGrowths {
					fits = false
					break
				}
				s.overflow = append(s.overflow, homeless)
				s.n++
			}
		}
		if fits {
			return s
		}
		size *= 2
	}
}

// maxKicks bounds the evictions of one insertion before the table grows.
const maxKicks = 64

// place stores r in one of its two slots, moving the routes in the way to
// their other slot (cuckoo insertion). When a chain of maxKicks evictions
// finds no room it returns the route left without a slot (r or one it
// moved), else nil.
func (s *slots) place(r *Route) *Route {
	mask := uint32(len(s.entries) - 1)
	i1, i2 := slotsOf(r.tag, mask)
	if s.entries[i1] == nil {
		s.set(i1, r)
		return nil
	}
	i := i2
	for range maxKicks {
		evicted := s.entries[i]
		s.set(i, r)
		if evicted == nil {
			return nil
		}
		r = evicted
		if a, b := slotsOf(r.tag, mask); i == a {
			i = b
		} else {
			i = a
		}
	}
	return r
}

func (s *slots) set(i uint32, r *Route) {
	if s.entries[i] == nil {
		s.n++
	}
	s.entries[i], s.tags[i] = r, r.tag
}

// each calls f for every route in s.
func (s *slots) each(f func(*Route)) {
	for _, r := range s.entries {
		if r != nil {
			f(r)
		}
	}
	for _, r := range s.overflow {
		f(r)
	}
}
