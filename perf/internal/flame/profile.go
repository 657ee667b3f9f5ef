// Package flame reads pprof profiles (gzipped profile.proto, as served by
// net/http/pprof) and renders them as SVG flame graphs, so `make
// flamegraphs` needs neither graphviz nor any module outside the standard
// library. Functions are safe for concurrent use on distinct inputs.
package flame

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrMalformed reports a profile that is not valid profile.proto.
var ErrMalformed = errors.New("flame: malformed profile")

// Profile is the part of a pprof profile a flame graph needs.
type Profile struct {
	SampleTypes []string // e.g. "cpu", "alloc_space"
	Samples     []Sample // stacks with one value per sample type
	funcs       map[uint64]string
	locs        map[uint64][]uint64 // location → function ids, innermost first
}

// Sample is one stack (leaf first, as function names) and its values.
type Sample struct {
	Stack  []string
	Values []int64
}

// Parse reads a gzipped or plain profile.proto.
func Parse(r io.Reader) (*Profile, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read profile: %w", err)
	}
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("cannot gunzip profile: %w", err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("cannot gunzip profile: %w", err)
		}
	}
	p := &Profile{funcs: map[uint64]string{}, locs: map[uint64][]uint64{}}
	var strs []string
	var typeIdx []int64
	type rawSample struct {
		locs []uint64
		vals []int64
	}
	var samples []rawSample
	funcNames := map[uint64]int64{}
	err = fields(raw, func(num int, wt int, v uint64, b []byte) error {
		switch num {
		case 1: // sample_type
			return fields(b, func(n, _ int, v uint64, _ []byte) error {
				if n == 1 {
					typeIdx = append(typeIdx, int64(v))
				}
				return nil
			})
		case 2: // sample
			var s rawSample
			err := fields(b, func(n, wt int, v uint64, b []byte) error {
				switch n {
				case 1:
					return repeated(wt, v, b, func(x uint64) { s.locs = append(s.locs, x) })
				case 2:
					return repeated(wt, v, b, func(x uint64) { s.vals = append(s.vals, int64(x)) })
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case 4: // location
			var id uint64
			var fids []uint64
			err := fields(b, func(n, _ int, v uint64, b []byte) error {
				switch n {
				case 1:
					id = v
				case 4:
					return fields(b, func(n, _ int, v uint64, _ []byte) error {
						if n == 1 {
							fids = append(fids, v)
						}
						return nil
					})
				}
				return nil
			})
			p.locs[id] = fids
			return err
		case 5: // function
			var id uint64
			var name int64
			err := fields(b, func(n, _ int, v uint64, _ []byte) error {
				switch n {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			})
			funcNames[id] = name
			return err
		case 6: // string_table
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i >= 0 && i < int64(len(strs)) {
			return strs[i]
		}
		return "?"
	}
	for _, i := range typeIdx {
		p.SampleTypes = append(p.SampleTypes, str(i))
	}
	for id, n := range funcNames {
		p.funcs[id] = str(n)
	}
	for _, s := range samples {
		var stack []string
		for _, l := range s.locs {
			for _, f := range p.locs[l] {
				stack = append(stack, p.funcs[f])
			}
		}
		p.Samples = append(p.Samples, Sample{Stack: stack, Values: s.vals})
	}
	return p, nil
}

// fields calls f for each field of a protobuf message: varint and fixed
// values in v, length-delimited bytes in b.
func fields(b []byte, f func(num, wt int, v uint64, b []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return ErrMalformed
		}
		b = b[n:]
		num, wt := int(key>>3), int(key&7)
		var v uint64
		var sub []byte
		switch wt {
		case 0:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return ErrMalformed
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return ErrMalformed
			}
			v, b = binary.LittleEndian.Uint64(b), b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return ErrMalformed
			}
			sub, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return ErrMalformed
			}
			v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		default:
			return ErrMalformed
		}
		if err := f(num, wt, v, sub); err != nil {
			return err
		}
	}
	return nil
}

// repeated handles a repeated varint field, packed (wire type 2) or not.
func repeated(wt int, v uint64, b []byte, add func(uint64)) error {
	if wt == 0 {
		add(v)
		return nil
	}
	for len(b) > 0 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return ErrMalformed
		}
		add(x)
		b = b[n:]
	}
	return nil
}

// Index returns the index of sample type name, or the last one if name is
// empty; -1 if absent.
func (p *Profile) Index(name string) int {
	if name == "" {
		return len(p.SampleTypes) - 1
	}
	for i, t := range p.SampleTypes {
		if t == name {
			return i
		}
	}
	return -1
}
