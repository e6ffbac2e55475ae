# courier-hostd fish shell completion

function __fish_courier-hostd_no_subcommand --description 'Test if there has been any subcommand yet'
    for i in (commandline -opc)
        if contains -- $i attach
            return 1
        end
    end
    return 0
end

complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l chassis -r -d 'this chassis\'s `NAME` (required)'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l encap-ip -r -d 'this host\'s underlay (VTEP) `ADDRESS` (required)'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l sb -r -d 'southbound `REMOTES`, comma-separated (default: $COURIER_SB_DB, else the run directory\'s sb.sock)'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l run-dir -r -d 'run directory holding the default sockets'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l role -r -d 'a role of this chassis: hub, gateway; repeatable'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l gateway-networks -r -d 'with --role gateway: the external `NETWORKS` it serves, comma-separated'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l uplink -r -d 'with --role gateway: the `INTERFACE` facing the external networks'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l gateway-next-hop -r -d 'with --role gateway: send upstream through this `ADDRESS` for networks whose External_Network.next_hop is unset (default: the gateway\'s own routes)'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l pin-root -r -d 'pin BPF objects under `DIR`/CHASSIS'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l device -r -d 'name of the VXLAN device'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l kernel-encap -d 'leave every encapsulation to the VXLAN device, as before #21 (an escape hatch, and the benchmark\'s baseline). By default the DVR puts the VXLAN headers on itself and sends out of the interface that holds the VTEP address, and the device sends only what the DVR cannot (anything not IPv4, such as hub probes and lessons; a VLAN tag; no route out of that interface; a packet over its MTU; counter encap_device)'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l heartbeat -r -d 'how often to tell southd this chassis is alive'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l refresh -r -d 'refresh a learned path through a hub after this long (to the kernel\'s tick: a path is used up to a tick, a few ms, longer)'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l cache-idle -r -d 'forget learned paths unused for this long'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l snat-port-quota -r -d 'per VM port, connections translated by SNAT it may hold at once (its share of the host\'s table of 262,144); 0: no limit'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l hub-budget -r -d 'per VM port, packets a second it may send to hubs (first packets to destinations not learned yet); 0: no limit'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l hub-burst -r -d 'per VM port, packets it may send to hubs at once'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l announce-budget -r -d 'per VM port, new addresses a second reported to hostd (gratuitous ARP, addresses of ports with unknown addresses); 0: no limit'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l announce-burst -r -d 'per VM port, new addresses reported at once'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l icmp-budget -r -d 'per VM port, ICMP errors a second sent back to it (time exceeded, unreachable, fragmentation needed); 0: no limit'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l icmp-burst -r -d 'per VM port, ICMP errors sent at once'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l unknown-ttl -r -d 'after a hub says a destination is unknown, drop packets to it here for this long'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l hub-probe-interval -r -d 'probe each hub this often (0: never); a hub\'s kernel answers'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l hub-down-after -r -d 'send new flows to another hub when one has not answered probes for this long'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l metrics-addr -r -d 'serve Prometheus metrics (/metrics), /healthz and /readyz on `ADDR` (host:port; a port alone is loopback\'s); empty: off'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l log-level -r -d 'debug, info, warn or error'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l log-format -r -d 'text (key=value) or json, one record a line'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l log-file -r -d 'log to `FILE` instead of standard error; SIGHUP reopens it (for logrotate)'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l private-key -s p -r -d 'this party\'s private key `FILE` for ssl: remotes'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l certificate -s c -r -d 'this party\'s certificate `FILE`; its common name is who the database thinks it is'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l ca-cert -s C -r -d 'the CA certificate `FILE` the database\'s certificate must be signed by'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l help -s h -d 'show help'
complete -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -f -l version -s V -d 'print the version and exit'
complete -c courier-hostd -n '__fish_seen_subcommand_from attach' -f -l help -s h -d 'show help'
complete -r -c courier-hostd -n '__fish_courier-hostd_no_subcommand' -a 'attach' -d 'tie a VM interface to a port by setting its alias courier:PORT'
