package schema

// The models in nbdb/ and sbdb/ are generated from the schemas by the
// modelgen pinned in go.mod; CI regenerates them and fails on a diff.
//go:generate go tool modelgen -extended -p nbdb -o nbdb nb.ovsschema
//go:generate go tool modelgen -extended -p sbdb -o sbdb sb.ovsschema
