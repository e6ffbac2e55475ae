package ops_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// fill sets every column field of the model m points to: zero values
// when zero, else a value in every field and two members in every set.
func fill(m any, zero bool) {
	v := reflect.ValueOf(m).Elem()
	const u = "0000000a-0000-4000-8000-00000000000a"
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		tag := v.Type().Field(i).Tag.Get("ovsdb")
		if tag == "" || tag == "_uuid" || zero {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(u)
		case reflect.Int:
			f.SetInt(7)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			switch p.Elem().Kind() {
			case reflect.String:
				p.Elem().SetString(u)
			case reflect.Int:
				p.Elem().SetInt(3)
			case reflect.Bool:
				p.Elem().SetBool(false) // present, and false
			}
			f.Set(p)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{u, "0000000b-0000-4000-8000-00000000000b"}).Convert(f.Type()))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"k": u}).Convert(f.Type()))
		}
	}
}

// checkTable holds a Table's inserts and updates to what libovsdb's
// mapper writes for the same rows.
func checkTable[T any, PT ops.Row[T]](t *testing.T, s ovsdb.DatabaseSchema, dbm model.DatabaseModel, table string) {
	t.Helper()
	tb, err := ops.NewTable[T, PT](s, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, zero := range []bool{false, true} {
		row := PT(new(T))
		fill(row, zero)
		info, err := dbm.NewModelInfo(row)
		if err != nil {
			t.Fatal(err)
		}
		want, err := dbm.Mapper.NewRow(info)
		if err != nil {
			t.Fatal(err)
		}
		delete(want, "_uuid")
		if got := tb.Insert(row).Row; !reflect.DeepEqual(got, want) {
			t.Errorf("%s (zero %v): insert writes\n%#v\nthe mapper\n%#v", table, zero, got, want)
		}
		var cols []string
		var ptrs []any
		v := reflect.ValueOf(row).Elem()
		for i := 0; i < v.NumField(); i++ {
			if c := v.Type().Field(i).Tag.Get("ovsdb"); c != "_uuid" {
				cols = append(cols, c)
				ptrs = append(ptrs, v.Field(i).Addr().Interface())
			}
		}
		want, err = dbm.Mapper.NewRow(info, ptrs...)
		if err != nil {
			t.Fatal(err)
		}
		if got := tb.Update(row, ops.WhereUUID("x"), cols...).Row; !reflect.DeepEqual(got, want) {
			t.Errorf("%s (zero %v): update writes\n%#v\nthe mapper\n%#v", table, zero, got, want)
		}
	}
}

func TestTablesWriteWhatTheMapperWrites(t *testing.T) {
	sb, nb := sbdb.Schema(), nbdb.Schema()
	sm, _ := sbdb.FullDatabaseModel()
	nm, _ := nbdb.FullDatabaseModel()
	sdbm, errs := model.NewDatabaseModel(sb, sm)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ndbm, errs := model.NewDatabaseModel(nb, nm)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	checks := map[string]func(){
		"sb/" + sbdb.ChassisTable:        func() { checkTable[sbdb.Chassis](t, sb, sdbm, sbdb.ChassisTable) },
		"sb/" + sbdb.ChassisPrivateTable: func() { checkTable[sbdb.ChassisPrivate](t, sb, sdbm, sbdb.ChassisPrivateTable) },
		"sb/" + sbdb.ConnectionTable:     func() { checkTable[sbdb.Connection](t, sb, sdbm, sbdb.ConnectionTable) },
		"sb/" + sbdb.DatapathTable:       func() { checkTable[sbdb.Datapath](t, sb, sdbm, sbdb.DatapathTable) },
		"sb/" + sbdb.ExternalNetworkTable: func() {
			checkTable[sbdb.ExternalNetwork](t, sb, sdbm, sbdb.ExternalNetworkTable)
		},
		"sb/" + sbdb.HubTable:            func() { checkTable[sbdb.Hub](t, sb, sdbm, sbdb.HubTable) },
		"sb/" + sbdb.LearnedBindingTable: func() { checkTable[sbdb.LearnedBinding](t, sb, sdbm, sbdb.LearnedBindingTable) },
		"sb/" + sbdb.LogicalFlowTable:    func() { checkTable[sbdb.LogicalFlow](t, sb, sdbm, sbdb.LogicalFlowTable) },
		"sb/" + sbdb.PortBindingTable:    func() { checkTable[sbdb.PortBinding](t, sb, sdbm, sbdb.PortBindingTable) },
		"sb/" + sbdb.RBACPermissionTable: func() { checkTable[sbdb.RBACPermission](t, sb, sdbm, sbdb.RBACPermissionTable) },
		"sb/" + sbdb.RBACRoleTable:       func() { checkTable[sbdb.RBACRole](t, sb, sdbm, sbdb.RBACRoleTable) },
		"sb/" + sbdb.SBGlobalTable:       func() { checkTable[sbdb.SBGlobal](t, sb, sdbm, sbdb.SBGlobalTable) },
		"sb/" + sbdb.SNATTable:           func() { checkTable[sbdb.SNAT](t, sb, sdbm, sbdb.SNATTable) },
		"sb/" + sbdb.SNATBlockTable:      func() { checkTable[sbdb.SNATBlock](t, sb, sdbm, sbdb.SNATBlockTable) },
		"sb/" + sbdb.SNATHandoffTable: func() {
			checkTable[sbdb.SNATHandoff](t, sb, sdbm, sbdb.SNATHandoffTable)
		},
		"sb/" + sbdb.SSLTable:        func() { checkTable[sbdb.SSL](t, sb, sdbm, sbdb.SSLTable) },
		"nb/" + nbdb.ConnectionTable: func() { checkTable[nbdb.Connection](t, nb, ndbm, nbdb.ConnectionTable) },
		"nb/" + nbdb.NBGlobalTable:   func() { checkTable[nbdb.NBGlobal](t, nb, ndbm, nbdb.NBGlobalTable) },
		"nb/" + nbdb.PortTable:       func() { checkTable[nbdb.Port](t, nb, ndbm, nbdb.PortTable) },
		"nb/" + nbdb.RouteTable:      func() { checkTable[nbdb.Route](t, nb, ndbm, nbdb.RouteTable) },
		"nb/" + nbdb.SSLTable:        func() { checkTable[nbdb.SSL](t, nb, ndbm, nbdb.SSLTable) },
		"nb/" + nbdb.SecurityGroupTable: func() {
			checkTable[nbdb.SecurityGroup](t, nb, ndbm, nbdb.SecurityGroupTable)
		},
		"nb/" + nbdb.SecurityGroupRuleTable: func() {
			checkTable[nbdb.SecurityGroupRule](t, nb, ndbm, nbdb.SecurityGroupRuleTable)
		},
		"nb/" + nbdb.ExternalNetworkTable: func() {
			checkTable[nbdb.ExternalNetwork](t, nb, ndbm, nbdb.ExternalNetworkTable)
		},
		"nb/" + nbdb.AddressClaimTable: func() {
			checkTable[nbdb.AddressClaim](t, nb, ndbm, nbdb.AddressClaimTable)
		},
		"nb/" + nbdb.EIPTable:   func() { checkTable[nbdb.EIP](t, nb, ndbm, nbdb.EIPTable) },
		"nb/" + nbdb.SNATTable:  func() { checkTable[nbdb.SNAT](t, nb, ndbm, nbdb.SNATTable) },
		"nb/" + nbdb.VPCTable:   func() { checkTable[nbdb.VPC](t, nb, ndbm, nbdb.VPCTable) },
		"nb/" + nbdb.VxnetTable: func() { checkTable[nbdb.Vxnet](t, nb, ndbm, nbdb.VxnetTable) },
	}
	for _, s := range []ovsdb.DatabaseSchema{sb, nb} {
		prefix := map[string]string{sb.Name: "sb/", nb.Name: "nb/"}[s.Name]
		for table := range s.Tables {
			if checks[prefix+table] == nil {
				t.Errorf("table %s%s is not checked here", prefix, table)
			}
		}
	}
	for _, check := range checks {
		check()
	}
}

func TestInsertNamesOnlyRowsWithAUUID(t *testing.T) {
	pb := ops.MustTable[sbdb.PortBinding](sbdb.Schema(), sbdb.PortBindingTable)
	for _, c := range []struct{ uuid, name, real string }{
		{"", "", ""},
		{"dp1", "dp1", ""},
		{"0000000a-0000-4000-8000-00000000000a", "", "0000000a-0000-4000-8000-00000000000a"},
	} {
		op := pb.Insert(&sbdb.PortBinding{UUID: c.uuid, LogicalPort: "p"})
		if op.UUIDName != c.name || op.UUID != c.real {
			t.Errorf("UUID %q: uuid-name %q, uuid %q; want %q, %q", c.uuid, op.UUIDName, op.UUID, c.name, c.real)
		}
	}
}

func TestEqualComparesAsOVSDBDoes(t *testing.T) {
	pb := ops.MustTable[sbdb.PortBinding](sbdb.Schema(), sbdb.PortBindingTable)
	hv1, hv1b, hv2 := "hv1", "hv1", "hv2"
	for _, c := range []struct {
		a, b  sbdb.PortBinding
		col   string
		equal bool
	}{
		{sbdb.PortBinding{IPs: []string{"10.0.0.1", "10.0.0.2"}}, sbdb.PortBinding{IPs: []string{"10.0.0.2", "10.0.0.1"}}, "ips", true},
		{sbdb.PortBinding{IPs: []string{"10.0.0.1", "10.0.0.1"}}, sbdb.PortBinding{IPs: []string{"10.0.0.1", "10.0.0.2"}}, "ips", false},
		{sbdb.PortBinding{IPs: nil}, sbdb.PortBinding{IPs: []string{}}, "ips", true},
		{sbdb.PortBinding{ExternalIDs: nil}, sbdb.PortBinding{ExternalIDs: map[string]string{}}, "external_ids", true},
		{sbdb.PortBinding{ExternalIDs: map[string]string{"a": "1"}}, sbdb.PortBinding{ExternalIDs: map[string]string{"a": "2"}}, "external_ids", false},
		{sbdb.PortBinding{Chassis: &hv1}, sbdb.PortBinding{Chassis: &hv1b}, "chassis", true},
		{sbdb.PortBinding{Chassis: &hv1}, sbdb.PortBinding{Chassis: &hv2}, "chassis", false},
		{sbdb.PortBinding{Chassis: &hv1}, sbdb.PortBinding{}, "chassis", false},
		{sbdb.PortBinding{MAC: "a"}, sbdb.PortBinding{MAC: "b", TunnelKey: 3}, "mac", false},
		{sbdb.PortBinding{MAC: "a"}, sbdb.PortBinding{MAC: "a", TunnelKey: 3}, "mac", true},
	} {
		if got := pb.Equal(&c.a, &c.b, c.col); got != c.equal {
			t.Errorf("%s: %+v and %+v equal %v, want %v", c.col, c.a, c.b, got, c.equal)
		}
	}
}

func TestCondWritesTheColumnsType(t *testing.T) {
	pb := ops.MustTable[sbdb.PortBinding](sbdb.Schema(), sbdb.PortBindingTable)
	hv1 := "hv1"
	for _, c := range []struct {
		col   string
		value any
		want  any
	}{
		{"chassis", &hv1, ovsdb.OvsSet{GoSet: []any{"hv1"}}},
		{"chassis", (*string)(nil), ovsdb.OvsSet{GoSet: []any{}}},
		{"chassis", nil, ovsdb.OvsSet{GoSet: []any{}}},
		{"datapath", "0000000a-0000-4000-8000-00000000000a", ovsdb.UUID{GoUUID: "0000000a-0000-4000-8000-00000000000a"}},
		{"vpc", 3, 3},
	} {
		got := pb.Cond(c.col, ovsdb.ConditionEqual, c.value)
		if !reflect.DeepEqual(got.Value, c.want) || got.Column != c.col {
			t.Errorf("%s == %v: %#v, want %#v", c.col, c.value, got, c.want)
		}
	}
}

func TestDiffWritesOnlyWhatDiffers(t *testing.T) {
	hubs := ops.MustTable[sbdb.Hub](sbdb.Schema(), sbdb.HubTable)
	have := map[int]*sbdb.Hub{
		1: {UUID: "h1", Vpc: 1, Chassis: []string{"a", "b"}},
		2: {UUID: "h2", Vpc: 2, Chassis: []string{"a"}, ExternalIDs: map[string]string{"x": "y"}},
		3: {UUID: "h3", Vpc: 3, Chassis: []string{"c"}},
	}
	want := map[int]*sbdb.Hub{
		1: {Vpc: 1, Chassis: []string{"b", "a"}}, // the same set
		2: {Vpc: 2, Chassis: []string{"b"}},      // external_ids are not owned
		4: {Vpc: 4, Chassis: []string{"d"}},
	}
	deletes, upserts := ops.Diff(hubs, []string{"chassis"}, []int{1, 2, 3, 4, 5},
		func(k int) *sbdb.Hub { return want[k] }, func(k int) *sbdb.Hub { return have[k] })
	if len(deletes) != 1 || deletes[0].Key != 3 || deletes[0].Have != have[3] || deletes[0].Want != nil {
		t.Errorf("deletes %+v, want hub 3's", deletes)
	}
	if len(upserts) != 2 {
		t.Fatalf("upserts %+v, want hub 2's update and hub 4's insert", upserts)
	}
	if u := upserts[0]; u.Key != 2 || u.Have != have[2] || !slices.Equal(u.Columns, []string{"chassis"}) {
		t.Errorf("first upsert %+v, want an update of hub 2's chassis", u)
	}
	if u := upserts[1]; u.Key != 4 || u.Have != nil || u.Want != want[4] {
		t.Errorf("second upsert %+v, want hub 4's insert", u)
	}
	row := hubs.With(have[2], want[2], upserts[0].Columns...)
	if !slices.Equal(row.Chassis, []string{"b"}) || row.ExternalIDs["x"] != "y" || row.UUID != "h2" || have[2].Chassis[0] != "a" {
		t.Errorf("hub 2 after the update: %+v (and before: %+v)", row, have[2])
	}
}
