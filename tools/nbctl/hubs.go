package nbctl

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// Which chassis may serve as hubs (schema.HubChassisOption): a hub's
// learn messages redirect other hosts' traffic, so where hypervisors are
// not all trusted the operator names them.
func hubCommands() []*command {
	return []*command{
		{Name: "set-hub-chassis", Args: "[CHASSIS...]", Summary: "only these chassis may serve as hubs (none: any that declares the hub role)",
			Min: 0, Max: -1, Tables: []string{tNB}, Run: cmdSetHubChassis},
		{Name: "get-hub-chassis", Summary: "print the chassis that may serve as hubs", Max: 0, Tables: []string{tNB},
			Run: func(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
				if st.global == nil {
					return nil
				}
				if v, ok := st.global.Options[schema.HubChassisOption]; ok {
					out.Text(strings.ReplaceAll(v, ",", "\n") + "\n")
				} else {
					out.Text("(any chassis with the hub role)\n")
				}
				return nil
			}},
	}
}

func cmdSetHubChassis(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	if st.global == nil {
		return errors.New("the NB_Global row is missing; run courier-ctl start or courier-nbctl init")
	}
	for _, c := range inv.Args {
		if err := checkName("chassis", c); err != nil {
			return err
		}
	}
	g := *st.global
	g.Options = maps.Clone(g.Options)
	if g.Options == nil {
		g.Options = map[string]string{}
	}
	if len(inv.Args) == 0 {
		delete(g.Options, schema.HubChassisOption)
	} else {
		names := slices.Clone(inv.Args)
		slices.Sort(names)
		g.Options[schema.HubChassisOption] = strings.Join(slices.Compact(names), ",")
	}
	st.global = &g
	return st.add(st.c.Where(&g).Update(&g, &g.Options))
}
