# courier-sandbox fish shell completion

function __fish_courier-sandbox_no_subcommand --description 'Test if there has been any subcommand yet'
    for i in (commandline -opc)
        if contains -- $i start stop status show vm-add vm-del vm-move vm-migrate host-down host-up underlay-replace exec demo
            return 1
        end
    end
    return 0
end

complete -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -f -l run-dir -r -d 'the sandbox\'s run directory (its database sockets are there)'
complete -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -f -l help -s h -d 'show help'
complete -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -f -l version -s V -d 'print the version and exit'
complete -c courier-sandbox -n '__fish_seen_subcommand_from start' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'start' -d 'start a sandbox (replacing any earlier one in the run directory)'
complete -c courier-sandbox -n '__fish_seen_subcommand_from start' -f -l hosts -r -d 'number of hypervisors'
complete -c courier-sandbox -n '__fish_seen_subcommand_from start' -f -l hubs -r -d 'how many of them are hubs'
complete -c courier-sandbox -n '__fish_seen_subcommand_from start' -f -l gateways -r -d 'add this many gateway chassis (gw1..gwN) of an external network "internet" (203.0.113.0/24), and an internet namespace (198.51.100.10) routed through them; and a physical server on the fabric (192.168.200.10) with an external network "dc" of kind physical (192.168.200.0/24)'
complete -c courier-sandbox -n '__fish_seen_subcommand_from start' -f -l tls -d 'run over mutual TLS with role-based access control, as across machines (PKI in RUN-DIR/pki)'
complete -c courier-sandbox -n '__fish_seen_subcommand_from start' -f -l verbose -s v -d 'log what is done'
complete -c courier-sandbox -n '__fish_seen_subcommand_from stop' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'stop' -d 'remove everything the sandbox made'
complete -c courier-sandbox -n '__fish_seen_subcommand_from status' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'status' -d 'show the sandbox\'s hosts, hostd processes and VMs'
complete -c courier-sandbox -n '__fish_seen_subcommand_from show' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'show' -d 'show the sandbox\'s network: VPCs, vxnets, ports and routes, where each port runs, the hubs and what hosts learned'
complete -c courier-sandbox -n '__fish_seen_subcommand_from show' -f -l format -r -d 'text; dot, a Graphviz graph; or svg, drawn by Graphviz\'s dot (`FORMAT`)'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-add' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'vm-add' -d 'create the VM of a northbound port on a host'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-add' -f -l dhcp -d 'configure nothing: the VM runs a DHCP client'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-add' -f -l dhcp-client -r -d 'with --dhcp, the client: udhcpc, dhclient or dhcpcd'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-add' -f -l mtu -r -d 'the VM\'s MTU (default: the overlay\'s; 1500 with --dhcp)'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-add' -f -l qemu -d 'boot a real QEMU guest on a tap in the host\'s namespace, not a namespace VM (image: make guest)'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-del' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'vm-del' -d 'remove a VM'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-move' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'vm-move' -d 'move a VM to another host, keeping its MAC and IP'
complete -c courier-sandbox -n '__fish_seen_subcommand_from vm-migrate' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'vm-migrate' -d 'live-migrate a VM to another host, its port moving with it'
complete -c courier-sandbox -n '__fish_seen_subcommand_from host-down' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'host-down' -d 'simulate a host\'s failure: its hostd killed, its links down on both sides'
complete -c courier-sandbox -n '__fish_seen_subcommand_from host-up' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'host-up' -d 'bring a host back after host-down: its links up, its hostd started as it was'
complete -c courier-sandbox -n '__fish_seen_subcommand_from underlay-replace' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'underlay-replace' -d 'replace a host\'s underlay link under its running hostd, as an operator recreating a bond'
complete -c courier-sandbox -n '__fish_seen_subcommand_from exec' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'exec' -d 'run a command inside a VM'
complete -c courier-sandbox -n '__fish_seen_subcommand_from demo' -f -l help -s h -d 'show help'
complete -r -c courier-sandbox -n '__fish_courier-sandbox_no_subcommand' -a 'demo' -d 'declare two VPCs with overlapping CIDRs, start VMs, and show routing and isolation'
