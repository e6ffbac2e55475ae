package dataplane

// The stages' numbers and dispatch, drop reasons, counters and flags come
// from the pipeline package; the BPF objects are compiled by the bpf2go
// pinned in go.mod with Debian's clang. dvrprof is the same programs
// with each stage timed (bpf/profile.h), for make bench only: nothing
// but ProfiledObject refers to it, so that hostd's binary leaves it out.
//go:generate go run ../pipeline/gen bpf/stages.h
//go:generate go run ../pipeline/gen bpf/dispatch.h
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type port -type port_addr_key -type ep_key -type local_ep -type remote_ep -type cached_ep -type vxnet -type vpc -type route_key -type route -type hubs -type learn_rl_key -type tunnel_rec -type redirect_rec -type trace_rec -type monitor_cfg -type dhcp_port -type sg_ident_key -type sg_ident -type sg_member_key -type sg_rule -type sg_rules_key -type sg_rules -type sg_denied_key -type port_sg -type ct_key -type ct_entry -type eip_local -type eip_port -type eip_gws -type gw_eip -type gw_cfg -type snat_port -type snat_block -type snat_use -type snat_fkey -type snat_fval -type snat_rkey -type snat_rval -type gw_snat_key -type phys_cfg -type vpc_eip_key -go-package dataplane dvr bpf/dvr.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -DCOURIER_PROFILE -I/usr/include/x86_64-linux-gnu" -target bpfel -no-global-types -type prof_slot -go-package dataplane dvrprof bpf/dvr.c
