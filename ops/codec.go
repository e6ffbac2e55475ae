package ops

import (
	"fmt"
	"maps"
	"reflect"
	"unsafe"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// How a model's field is written in an operation and compared, decided
// once per column from the schema (RFC 7047 §3.2) and the field's Go
// type, the way modelgen maps one to the other: an atom to a plain
// field, a set of at most one to a pointer, a larger set to a slice, a
// map to a map. A reference (a "uuid" atom) is a string in the model and
// an ovsdb.UUID on the wire, which AppendOperation and libovsdb write as
// a UUID or, for a row of the same transaction, a named UUID.
//
// A codec reads its field through a pointer at the field's offset, typed
// once at planning: a northd that compares 64,000 bindings column by
// column pays a dereference per column, not a reflect.Value.

// codec is how one column is written, recognized at its default and
// compared; each is given a pointer to the field.
type codec struct {
	encode    func(p unsafe.Pointer) any
	isDefault func(p unsafe.Pointer) bool
	kind      kind
}

// kind is a field's Go type, for comparing without an indirect call: a
// sync compares every owned column of every row, and a switch costs
// what a hand-written comparison does, a call through a function value
// four times that.
type kind uint8

const (
	kString kind = iota
	kInt
	kBool
	kReal
	kOptString
	kOptInt
	kOptBool
	kOptReal
	kSetString
	kSetInt
	kSetBool
	kSetReal
	kMapString
)

// equal compares two fields of kind k: sets in any order, nil as empty.
func (k kind) equal(a, b unsafe.Pointer) bool {
	switch k {
	case kString:
		return *(*string)(a) == *(*string)(b)
	case kInt:
		return *(*int)(a) == *(*int)(b)
	case kBool:
		return *(*bool)(a) == *(*bool)(b)
	case kReal:
		return *(*float64)(a) == *(*float64)(b)
	case kOptString:
		return equalOptional[string](a, b)
	case kOptInt:
		return equalOptional[int](a, b)
	case kOptBool:
		return equalOptional[bool](a, b)
	case kOptReal:
		return equalOptional[float64](a, b)
	case kSetString:
		return EqualSets(*(*[]string)(a), *(*[]string)(b))
	case kSetInt:
		return EqualSets(*(*[]int)(a), *(*[]int)(b))
	case kSetBool:
		return EqualSets(*(*[]bool)(a), *(*[]bool)(b))
	case kSetReal:
		return EqualSets(*(*[]float64)(a), *(*[]float64)(b))
	default:
		return maps.Equal(*(*map[string]string)(a), *(*map[string]string)(b))
	}
}

// equalOptional: absent equals only absent.
func equalOptional[A atom](a, b unsafe.Pointer) bool {
	x, y := *(**A)(a), *(**A)(b)
	if x == nil || y == nil {
		return x == y
	}
	return *x == *y
}

// atom is what an OVSDB atom is held in, by the field's underlying type.
type atom interface {
	~string | ~int | ~bool | ~float64
}

func columnCodec(cs *ovsdb.ColumnSchema, ft reflect.Type) (codec, error) {
	ct := cs.TypeObj
	switch cs.Type {
	case ovsdb.TypeMap:
		str := func(typ string) bool { return typ == ovsdb.TypeString || typ == ovsdb.TypeUUID }
		if ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String && ft.Elem().Kind() == reflect.String &&
			str(ct.Key.Type) && str(ct.Value.Type) {
			return mapCodec(writeString(ct.Key.Type == ovsdb.TypeUUID), writeString(ct.Value.Type == ovsdb.TypeUUID)), nil
		}
		return codec{}, fmt.Errorf("a map of %s to %s in a Go %s (only maps of strings and references are supported)",
			ct.Key.Type, ct.Value.Type, ft)
	case ovsdb.TypeSet:
		switch ft.Kind() {
		case reflect.Pointer:
			return byKind(ct.Key.Type, ft.Elem(), optionalString, optionalInt, optionalBool, optionalReal)
		case reflect.Slice:
			return byKind(ct.Key.Type, ft.Elem(), setString, setInt, setBool, setReal)
		}
		return codec{}, fmt.Errorf("a set column in a Go %s", ft)
	}
	return byKind(ct.Key.Type, ft, atomString, atomInt, atomBool, atomReal)
}

// byKind picks, by the OVSDB atom type typ held in a Go t, one of the
// codec makers for strings (and UUIDs), integers, booleans and reals.
func byKind(typ string, t reflect.Type, str func(uuid bool) codec, i, b, r func() codec) (codec, error) {
	want := map[string]reflect.Kind{ovsdb.TypeString: reflect.String, ovsdb.TypeUUID: reflect.String,
		ovsdb.TypeInteger: reflect.Int, ovsdb.TypeReal: reflect.Float64, ovsdb.TypeBoolean: reflect.Bool}[typ]
	if t.Kind() != want {
		return codec{}, fmt.Errorf("an atom of type %s in a Go %s", typ, t)
	}
	switch want {
	case reflect.String:
		return str(typ == ovsdb.TypeUUID), nil
	case reflect.Int:
		return i(), nil
	case reflect.Bool:
		return b(), nil
	default:
		return r(), nil
	}
}

// writeString is how a string atom is written: a reference as a UUID.
func writeString(uuid bool) func(string) any {
	if uuid {
		return func(s string) any { return ovsdb.UUID{GoUUID: s} }
	}
	return func(s string) any { return s }
}

func writeAtom[A atom](a A) any { return a }

// An atom's default is its zero value, as libovsdb's mapper decides when
// it leaves columns out of an insert: a boolean is always written, and a
// reference is absent when empty or all zeros.
func atomCodec[A atom](k kind, write func(A) any, isDefault func(A) bool) codec {
	return codec{
		encode:    func(p unsafe.Pointer) any { return write(*(*A)(p)) },
		isDefault: func(p unsafe.Pointer) bool { return isDefault(*(*A)(p)) },
		kind:      k,
	}
}

func isZero[A atom](a A) bool { var z A; return a == z }

func atomString(uuid bool) codec {
	dflt := isZero[string]
	if uuid {
		dflt = func(s string) bool { return s == "" || s == "00000000-0000-0000-0000-000000000000" }
	}
	return atomCodec(kString, writeString(uuid), dflt)
}
func atomInt() codec  { return atomCodec(kInt, writeAtom[int], isZero[int]) }
func atomReal() codec { return atomCodec(kReal, writeAtom[float64], isZero[float64]) }
func atomBool() codec { return atomCodec(kBool, writeAtom[bool], func(bool) bool { return false }) }

// optionalCodec: a set of at most one, a pointer in the model; absent is
// the default, and equals only absent.
func optionalCodec[A atom](k kind, write func(A) any) codec {
	return codec{
		kind: k,
		encode: func(p unsafe.Pointer) any {
			if v := *(**A)(p); v != nil {
				return ovsdb.OvsSet{GoSet: []any{write(*v)}}
			}
			return ovsdb.OvsSet{GoSet: []any{}}
		},
		isDefault: func(p unsafe.Pointer) bool { return *(**A)(p) == nil },
	}
}

func optionalString(uuid bool) codec { return optionalCodec(kOptString, writeString(uuid)) }
func optionalInt() codec             { return optionalCodec(kOptInt, writeAtom[int]) }
func optionalBool() codec            { return optionalCodec(kOptBool, writeAtom[bool]) }
func optionalReal() codec            { return optionalCodec(kOptReal, writeAtom[float64]) }

// setCodec: a set, a slice in the model, compared in any order; nil is
// the empty set, the default.
func setCodec[A atom](k kind, write func(A) any) codec {
	return codec{
		kind: k,
		encode: func(p unsafe.Pointer) any {
			s := *(*[]A)(p)
			out := make([]any, len(s))
			for i, a := range s {
				out[i] = write(a)
			}
			return ovsdb.OvsSet{GoSet: out}
		},
		isDefault: func(p unsafe.Pointer) bool { return len(*(*[]A)(p)) == 0 },
	}
}

func setString(uuid bool) codec { return setCodec(kSetString, writeString(uuid)) }
func setInt() codec             { return setCodec(kSetInt, writeAtom[int]) }
func setBool() codec            { return setCodec(kSetBool, writeAtom[bool]) }
func setReal() codec            { return setCodec(kSetReal, writeAtom[float64]) }

// mapCodec: a map of strings (or references); nil is the empty map,
// the default.
func mapCodec(key, value func(string) any) codec {
	return codec{
		kind: kMapString,
		encode: func(p unsafe.Pointer) any {
			m := *(*map[string]string)(p)
			out := make(map[any]any, len(m))
			for k, v := range m {
				out[key(k)] = value(v)
			}
			return ovsdb.OvsMap{GoMap: out}
		},
		isDefault: func(p unsafe.Pointer) bool { return len(*(*map[string]string)(p)) == 0 },
	}
}
