package jsonrpc

import (
	"fmt"
	"reflect"

	"github.com/ovn-kubernetes/libovsdb/model"
)

// RowDecoder fills a model struct (the kind modelgen writes: fields
// tagged `ovsdb:"column"`) straight from a row as ovsdb-server sends it.
// It gives what libovsdb's mapper gives for the same row (empty sets and
// maps included, see rowdec_test.go), at a fraction of the cost. Columns
// the model lacks are skipped; columns the row lacks keep zero values.
type RowDecoder struct {
	typ  reflect.Type
	uuid int // index of the _uuid field
	cols map[string]colDecoder
}

type colDecoder struct {
	field int
	dec   func(s *scanner, v reflect.Value) error
}

// NewRowDecoder plans the decoding of m's type.
func NewRowDecoder(m model.Model) (*RowDecoder, error) {
	t := reflect.TypeOf(m)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("model %T is not a pointer to a struct", m)
	}
	t = t.Elem()
	d := &RowDecoder{typ: t, uuid: -1, cols: map[string]colDecoder{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		col := f.Tag.Get("ovsdb")
		if col == "" {
			continue
		}
		dec, err := decoderFor(f.Type)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		if col == "_uuid" {
			d.uuid = i
		}
		d.cols[col] = colDecoder{field: i, dec: dec}
	}
	if d.uuid < 0 {
		return nil, fmt.Errorf("model %s has no _uuid field", t.Name())
	}
	return d, nil
}

// Decode returns a new model holding row (a JSON object of columns) with
// UUID uuid.
func (d *RowDecoder) Decode(uuid string, row []byte) (model.Model, error) {
	p := reflect.New(d.typ)
	v := p.Elem()
	v.Field(d.uuid).SetString(uuid)
	s := &scanner{b: row}
	err := s.object(func(key []byte) error {
		c, ok := d.cols[string(key)]
		if !ok {
			_, err := s.skip()
			return err
		}
		if err := c.dec(s, v.Field(c.field)); err != nil {
			return fmt.Errorf("column %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p.Interface().(model.Model), nil
}

var (
	stringSliceType = reflect.TypeOf([]string(nil))
	stringMapType   = reflect.TypeOf(map[string]string(nil))
)

// decoderFor returns the decoder of one column of Go type t: an atom, an
// optional atom (*T, a set of at most one), a set ([]T) or a map.
func decoderFor(t reflect.Type) (func(*scanner, reflect.Value) error, error) {
	switch {
	case t == stringSliceType:
		return decodeStringSet, nil
	case t == stringMapType:
		return decodeStringMap, nil
	}
	switch t.Kind() {
	case reflect.String, reflect.Int, reflect.Int64, reflect.Float64, reflect.Bool:
		return decodeAtom, nil
	case reflect.Pointer:
		if !isAtomKind(t.Elem().Kind()) {
			break
		}
		return func(s *scanner, v reflect.Value) error {
			var got reflect.Value
			err := eachSetElem(s, func() error {
				got = reflect.New(t.Elem())
				return decodeAtom(s, got.Elem())
			})
			if err == nil && got.IsValid() {
				v.Set(got)
			}
			return err
		}, nil
	case reflect.Slice:
		if !isAtomKind(t.Elem().Kind()) {
			break
		}
		return func(s *scanner, v reflect.Value) error {
			out := reflect.MakeSlice(t, 0, 1)
			err := eachSetElem(s, func() error {
				e := reflect.New(t.Elem()).Elem()
				if err := decodeAtom(s, e); err != nil {
					return err
				}
				out = reflect.Append(out, e)
				return nil
			})
			v.Set(out)
			return err
		}, nil
	case reflect.Map:
		if !isAtomKind(t.Key().Kind()) || !isAtomKind(t.Elem().Kind()) {
			break
		}
		return func(s *scanner, v reflect.Value) error {
			out := reflect.MakeMap(t)
			err := eachMapPair(s, func() error {
				k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
				if err := decodeAtom(s, k); err != nil {
					return err
				}
				if err := s.expect(','); err != nil {
					return err
				}
				if err := decodeAtom(s, e); err != nil {
					return err
				}
				out.SetMapIndex(k, e)
				return nil
			})
			v.Set(out)
			return err
		}, nil
	}
	return nil, fmt.Errorf("no decoder for Go type %s", t)
}

func isAtomKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Int, reflect.Int64, reflect.Float64, reflect.Bool:
		return true
	}
	return false
}

// decodeAtom reads one atom into v: a string or UUID (["uuid", "..."])
// into a string, an integer, a real or a boolean.
func decodeAtom(s *scanner, v reflect.Value) error {
	switch v.Kind() {
	case reflect.String:
		str, err := s.atomString()
		if err == nil {
			v.SetString(str)
		}
		return err
	case reflect.Int, reflect.Int64:
		n, err := s.integer()
		if err == nil {
			v.SetInt(n)
		}
		return err
	case reflect.Float64:
		f, err := s.real()
		if err == nil {
			v.SetFloat(f)
		}
		return err
	case reflect.Bool:
		b, err := s.boolean()
		if err == nil {
			v.SetBool(b)
		}
		return err
	}
	return s.errorf("cannot decode into %s", v.Type())
}

// atomString reads a string atom or a UUID.
func (s *scanner) atomString() (string, error) {
	if s.peek() != '[' {
		return s.str()
	}
	tag, err := s.tagged()
	if err != nil {
		return "", err
	}
	if tag != "uuid" && tag != "named-uuid" {
		return "", s.errorf("want a UUID, got %q", tag)
	}
	u, err := s.str()
	if err != nil {
		return "", err
	}
	return u, s.expect(']')
}

// eachSetElem calls elem once per member of a set, which RFC 7047 writes
// as ["set", [...]] or, with one member, as that member alone.
func eachSetElem(s *scanner, elem func() error) error {
	if s.peek() != '[' {
		return elem()
	}
	save := s.i
	tag, err := s.tagged()
	if err != nil {
		return err
	}
	if tag != "set" {
		s.i = save // a single UUID
		return elem()
	}
	if err := s.array(elem); err != nil {
		return err
	}
	return s.expect(']')
}

// eachMapPair calls pair with the scanner at each [key, value] pair's key.
func eachMapPair(s *scanner, pair func() error) error {
	tag, err := s.tagged()
	if err != nil {
		return err
	}
	if tag != "map" {
		return s.errorf("want a map, got %q", tag)
	}
	err = s.array(func() error {
		if err := s.expect('['); err != nil {
			return err
		}
		if err := pair(); err != nil {
			return err
		}
		return s.expect(']')
	})
	if err != nil {
		return err
	}
	return s.expect(']')
}

func decodeStringSet(s *scanner, v reflect.Value) error {
	out := []string{}
	err := eachSetElem(s, func() error {
		str, err := s.atomString()
		out = append(out, str)
		return err
	})
	v.Set(reflect.ValueOf(out))
	return err
}

func decodeStringMap(s *scanner, v reflect.Value) error {
	out := map[string]string{}
	err := eachMapPair(s, func() error {
		k, err := s.atomString()
		if err != nil {
			return err
		}
		if err := s.expect(','); err != nil {
			return err
		}
		val, err := s.atomString()
		out[k] = val
		return err
	})
	v.Set(reflect.ValueOf(out))
	return err
}

// ApplyDiff returns a copy of old with an update2 "modify" applied
// (ovsdb-server(7), "update2"): a scalar or optional column (a set of at
// most one) takes the value sent; a larger set toggles the members
// listed; a map takes each pair listed, except that a pair it already
// holds is removed.
func (d *RowDecoder) ApplyDiff(old model.Model, diff []byte) (model.Model, error) {
	ov := reflect.ValueOf(old)
	if ov.Type() != reflect.PointerTo(d.typ) || ov.IsNil() {
		return nil, fmt.Errorf("ApplyDiff: %T is not a %s", old, d.typ)
	}
	p := reflect.New(d.typ)
	v := p.Elem()
	v.Set(ov.Elem())
	s := &scanner{b: diff}
	err := s.object(func(key []byte) error {
		c, ok := d.cols[string(key)]
		if !ok {
			_, err := s.skip()
			return err
		}
		f := v.Field(c.field)
		var err error
		switch f.Kind() {
		case reflect.Pointer:
			// A set of at most one member is sent whole, not toggled.
			var members []reflect.Value
			if members, err = setMembers(s, f.Type().Elem()); err != nil {
				break
			}
			switch len(members) {
			case 0:
				f.Set(reflect.Zero(f.Type()))
			case 1:
				ptr := reflect.New(f.Type().Elem())
				ptr.Elem().Set(members[0])
				f.Set(ptr)
			default:
				err = s.errorf("an optional column given %d values", len(members))
			}
		case reflect.Slice:
			cur := make([]reflect.Value, f.Len())
			for i := range cur {
				cur[i] = f.Index(i)
			}
			var members []reflect.Value
			if members, err = setMembers(s, f.Type().Elem()); err != nil {
				break
			}
			now := toggle(cur, members)
			out := reflect.MakeSlice(f.Type(), len(now), len(now))
			for i, e := range now {
				out.Index(i).Set(e)
			}
			f.Set(out)
		case reflect.Map:
			changes := reflect.New(f.Type()).Elem()
			if err = c.dec(s, changes); err != nil {
				break
			}
			out := reflect.MakeMapWithSize(f.Type(), f.Len()+changes.Len())
			for it := f.MapRange(); it.Next(); {
				out.SetMapIndex(it.Key(), it.Value())
			}
			for it := changes.MapRange(); it.Next(); {
				if had := f.MapIndex(it.Key()); had.IsValid() && had.Interface() == it.Value().Interface() {
					out.SetMapIndex(it.Key(), reflect.Value{})
				} else {
					out.SetMapIndex(it.Key(), it.Value())
				}
			}
			f.Set(out)
		default:
			err = c.dec(s, f)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p.Interface().(model.Model), nil
}

// setMembers reads a set (or a lone member) of atoms of type t.
func setMembers(s *scanner, t reflect.Type) ([]reflect.Value, error) {
	var out []reflect.Value
	err := eachSetElem(s, func() error {
		e := reflect.New(t).Elem()
		if err := decodeAtom(s, e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// toggle is the symmetric difference of cur and members, in cur's order
// and then the members'.
func toggle(cur, members []reflect.Value) []reflect.Value {
	flip := make(map[any]bool, len(members))
	for _, m := range members {
		flip[m.Interface()] = true
	}
	var out []reflect.Value
	for _, c := range cur {
		if k := c.Interface(); flip[k] {
			delete(flip, k) // present before: removed
		} else {
			out = append(out, c)
		}
	}
	for _, m := range members {
		if flip[m.Interface()] {
			out = append(out, m)
			delete(flip, m.Interface())
		}
	}
	return out
}
