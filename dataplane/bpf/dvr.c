// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Courier's distributed virtual router.
 *
 * port_ingress runs on the host side of every VM's veth (tcx ingress: the
 * VM's transmissions) and decides every hop there, in the sending host's
 * kernel: port security, ARP answered locally, L2 within the vxnet, one
 * hop of L3 between the VPC's vxnets, then local delivery with
 * bpf_redirect_peer or one encapsulation through the collect-metadata
 * VXLAN device straight to the destination's host. An unknown destination
 * goes to one of the VPC's hubs.
 *
 * tunnel_ingress runs on the VXLAN device: it delivers to local ports, and
 * on a hub forwards what is not local, answers encapsulated ARP and sends
 * learn messages (learn.h) so that senders go direct from then on.
 *
 * Both are the pipeline of pipeline/stages.go, one direction each: the
 * driver (pipeline.h) calls each stage's function (stage_NAME.h) by its
 * number, and each stage's behaviours are switched on by the flags its
 * logical flows compile to (hostd/lflow.go).
 */
#include "common.h"
#include "config.h"
#include "pipeline.h"
#include "stage_port_sec.h"
#include "stage_arp_rsp.h"
#include "stage_l2_lookup.h"
#include "stage_ip_route.h"
#include "stage_dst_lookup.h"
#include "stage_to_hub.h"
#include "stage_tun_admit.h"
#include "stage_tun_learn.h"
#include "stage_tun_arp.h"
#include "stage_tun_lookup.h"
#include "stage_dhcp.h"
#include "stage_icmp_err.h"
#include "stage_sg_egress.h"
#include "stage_sg_ingress.h"
#include "stage_eip_in.h"
#include "stage_eip_out.h"
#include "nat_snat.h"
#include "gateway.h"
#include "phys.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int port_ingress(struct __sk_buff *skb)
{
	prof_clock();
	prof_start(PROF_T_WHOLE);
	count(STAT_PORT_RX);
	struct pctx c = {.ifindex = skb->ifindex, .from_port = 1};
	int r = run_pipeline(skb, &c, STAGE_PORT_SEC);
	prof_end(PROF_T_WHOLE, PROF_WHOLE);
	return r;
}

SEC("tc")
int tunnel_ingress(struct __sk_buff *skb)
{
	prof_clock();
	prof_start(PROF_T_WHOLE);
	count(STAT_TUNNEL_RX);
	/* Only a gateway pays gw_from_tunnel's call (its config is an
	 * array entry, read inline): a call and its return are dear under
	 * SRSO, on every packet a host receives (#21). */
	if (gw_enabled()) {
		int gw = gw_from_tunnel(skb);
		if (gw >= 0)
			return gw;
	}
	struct pctx c = {};
	int r = run_pipeline(skb, &c, STAGE_TUN_ADMIT);
	prof_end(PROF_T_WHOLE, PROF_WHOLE);
	return r;
}
