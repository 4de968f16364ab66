package host

import (
	"reflect"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	in := [][2]string{{":path", "/"}, {"a", ""}, {"b", "22"}}
	if got := decodePairs(encodePairs(in)); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip = %v", got)
	}
	// The spec's example: {"a": "1"}, {"b": "22"}.
	want := []byte{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 'a', 0, '1', 0, 'b', 0, '2', '2', 0}
	if got := encodePairs([][2]string{{"a", "1"}, {"b", "22"}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("encoding = %v", got)
	}
	for _, bad := range [][]byte{nil, {0}, {1, 0, 0, 0}, {1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 'a', 0}, {0xff, 0xff, 0xff, 0xff}, append(want, 0)} {
		if got := decodePairs(bad); got != nil {
			t.Errorf("decodePairs(%v) = %v, want nothing", bad, got)
		}
	}
}

func TestHeaderMap(t *testing.T) {
	m := newHeaderMap([][2]string{{"A", "1"}, {"b", "2"}, {"a", "3"}})
	if v, _ := m.get("a"); v != "1" {
		t.Fatal(v)
	}
	m.replace("A", "x")
	if !reflect.DeepEqual(m.pairs, [][2]string{{"a", "x"}, {"b", "2"}}) {
		t.Fatal(m.pairs)
	}
	m.add("c", "4")
	m.remove("b")
	if !reflect.DeepEqual(m.pairs, [][2]string{{"a", "x"}, {"c", "4"}}) || m.byteSize() != 4 {
		t.Fatal(m.pairs)
	}
}

func TestSharedDataAndQueues(t *testing.T) {
	s := NewStore()
	if st := s.setShared("vm", "k", []byte("v1"), 0); st != statusOK {
		t.Fatal(st)
	}
	v, cas, ok := s.getShared("vm", "k")
	if !ok || string(v) != "v1" || cas == 0 {
		t.Fatal(v, cas, ok)
	}
	if st := s.setShared("vm", "k", []byte("v2"), cas+1); st != statusCASMismatch {
		t.Fatalf("stale cas: %v", st)
	}
	if st := s.setShared("vm", "k", []byte("v2"), cas); st != statusOK {
		t.Fatal(st)
	}
	if _, _, ok := s.getShared("other-vm", "k"); ok {
		t.Fatal("shared data leaked across vm_ids")
	}
	var notified []uint32
	tok := s.registerQueue("vm", "q", func(t uint32) { notified = append(notified, t) })
	if t2, ok := s.resolveQueue("vm", "q"); !ok || t2 != tok {
		t.Fatal("resolve")
	}
	if _, st := s.dequeue(tok); st != statusEmpty {
		t.Fatal(st)
	}
	s.enqueue(tok, []byte("x"))
	if b, st := s.dequeue(tok); st != statusOK || string(b) != "x" || len(notified) != 1 {
		t.Fatal(b, st, notified)
	}
	if st := s.enqueue(tok+100, nil); st != statusNotFound {
		t.Fatal(st)
	}
}
